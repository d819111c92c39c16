#!/usr/bin/env bash
# run_slurm.sh: run a command as a Slurm array job, one log per task; waits for it.
#
#   run_slurm.sh [--config conf/slurm.conf] [--gpu N] [--num-threads N] [--mem SIZE]
#                [--max-jobs-run M] [--stdout FILE] [--redo] [JOB=1:N] LOG COMMAND [ARGS...]
#
# Same contract as run_local.sh: task j runs COMMAND with every "JOB" in LOG and ARGS
# replaced by j, stdout and stderr in its own log; the status is 0 only when every
# task succeeded, and the logs of failed tasks are printed. The job script is written
# beside the logs (q/NAME.sh) and submitted with "sbatch --wait --array=...": Slurm's
# own output of task j goes to q/NAME.j.out, the submission's to q/NAME.submit.log.
#
# Resubmits only what is missing: in an array of several tasks, a task whose log starts
# with the same command line and ends with "# Ended (code 0)" (and whose --stdout file
# exists) is done, and is left out; when every task is done nothing is submitted. (Its
# output is taken to be there: to redo one, delete its log too.) --redo (the recipes
# pass it with --force) submits every task; a single job is always submitted. A failed task (its log does not end with code 0:
# the command failed, or Slurm cancelled or killed it) is named with its log, the last
# lines of it and of Slurm's output, and the Slurm job id; the status is then 1.
# Interrupting this script (Ctrl-C, TERM) cancels the array job it submitted.
#
# The config file is a bash fragment setting (see recipes/conf/slurm.conf):
#   slurm_opts=(...)       options for every job (partition, time limit, ...); they come
#                          after the defaults made from --num-threads and --mem, so they win
#   slurm_gpu_opts=(...)   extra options when --gpu N > 0 ("GPUS" is replaced by N)
#   slurm_sbatch=sbatch    the submit command (e.g. a wrapper script)
#   slurm_scancel=scancel  the cancel command
set -euo pipefail

config=""
gpu=0
num_threads=1
mem=""
max_jobs_run=0
stdout_pattern=""
redo=false
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --gpu) gpu="$2"; shift 2 ;;
    --num-threads) num_threads="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    --max-jobs-run) max_jobs_run="$2"; shift 2 ;;
    --stdout) stdout_pattern="$2"; shift 2 ;;
    --redo) redo=true; shift ;;
    *) break ;;
  esac
done

slurm_opts=()
slurm_gpu_opts=(--gres=gpu:GPUS)
slurm_sbatch=sbatch
slurm_scancel=scancel
if [ -n "$config" ]; then
  [ -f "$config" ] || { echo "$0: slurm config $config not found" >&2; exit 2; }
  # shellcheck disable=SC1090
  . "$config"
fi

# shellcheck source-path=SCRIPTDIR source=job_range.sh
. "$(dirname "${BASH_SOURCE[0]}")/job_range.sh"
parse_job_range "$@"
shift "$job_range_args"
[ $# -ge 2 ] || { echo "usage: $0 [options] [JOB=1:N] LOG COMMAND [ARGS...]" >&2; exit 2; }
log_pattern="$1"
shift
if [ "$array" = true ] && [ "$last" -gt "$first" ] && [[ $log_pattern != *JOB* ]]; then
  echo "$0: with several jobs the log name must contain JOB: $log_pattern" >&2
  exit 2
fi

log_dir=$(dirname "$log_pattern")
name=$(basename "$log_pattern" .log)
name="${name//.JOB/}"
name="${name//JOB/}"
mkdir -p "$log_dir/q"
script="$log_dir/q/$name.sh"

# The job script substitutes JOB itself, from SLURM_ARRAY_TASK_ID, so that the
# command needs no re-parsing by a shell: every argument is written %q-quoted.
{
  echo '#!/usr/bin/env bash'
  printf 'cd %q\n' "$PWD"
  printf 'log=%q\n' "$log_pattern"
  printf 'array=%q\n' "$array"
  printf 'out=%q\n' "$stdout_pattern"
  printf 'args=('
  printf ' %q' "$@"
  printf ' )\n'
  cat <<'EOF'
set -uo pipefail
job=${SLURM_ARRAY_TASK_ID:-1}
log="${log//JOB/$job}"
if [ "$array" = true ]; then
  args=("${args[@]//JOB/$job}")
fi
{ printf '#'; printf ' %q' "${args[@]}"; printf '\n# Started at %s on %s\n' "$(date)" "$(hostname)"; } >"$log"
start=$(date +%s)
if [ -n "$out" ]; then
  out="${out//JOB/$job}"
  mkdir -p "$(dirname "$out")"
  "${args[@]}" >"$out.tmp" 2>>"$log" </dev/null
  rc=$?
  if [ "$rc" -eq 0 ]; then mv "$out.tmp" "$out"; else rm -f "$out.tmp"; fi
else
  "${args[@]}" >>"$log" 2>&1 </dev/null
  rc=$?
fi
printf '# Accounting: time=%s s\n# Ended (code %s) at %s\n' "$(( $(date +%s) - start ))" "$rc" "$(date)" >>"$log"
exit "$rc"
EOF
} >"$script"
chmod +x "$script"

# the command line task j records in its log's first line (as the job script writes it)
task_line() {
  local job="$1" arg args=()
  shift
  for arg in "$@"; do
    if [ "$array" = true ]; then args+=("${arg//JOB/$job}"); else args+=("$arg"); fi
  done
  printf '#'
  printf ' %q' "${args[@]}"
  printf '\n'
}

task_done() {  # task_done JOB COMMAND...: the task's log says it ran this command and succeeded
  local job="$1" log
  shift
  log="${log_pattern//JOB/$job}"
  [ -f "$log" ] || return 1
  [ "$(head -n 1 "$log")" = "$(task_line "$job" "$@")" ] || return 1
  tail -n 1 "$log" | grep -q '^# Ended (code 0)' || return 1
  [ -z "$stdout_pattern" ] || [ -f "${stdout_pattern//JOB/$job}" ]
}

todo=()
for ((job = first; job <= last; job++)); do
  # a single job always runs: its stage runs it because its output is missing
  if [ "$redo" = true ] || [ "$last" -eq "$first" ] || ! task_done "$job" "$@"; then todo+=("$job"); fi
done
if [ ${#todo[@]} -eq 0 ]; then
  echo "$0: all $((last - first + 1)) task(s) of $name already done (logs: $log_pattern); nothing submitted" >&2
  exit 0
fi
# the array spec: runs of consecutive tasks as ranges, e.g. 1-3,5
spec=""
i=0
while [ "$i" -lt ${#todo[@]} ]; do
  j="$i"
  while [ $((j + 1)) -lt ${#todo[@]} ] && [ "${todo[$((j + 1))]}" -eq $((todo[j] + 1)) ]; do j=$((j + 1)); done
  if [ "$j" -gt "$i" ]; then spec+="${spec:+,}${todo[$i]}-${todo[$j]}"; else spec+="${spec:+,}${todo[$i]}"; fi
  i=$((j + 1))
done
if [ ${#todo[@]} -lt $((last - first + 1)) ]; then
  echo "$0: resubmitting task(s) $spec of $name; the others are done" >&2
fi
for job in "${todo[@]}"; do rm -f "${log_pattern//JOB/$job}"; done

opts=(--cpus-per-task="$num_threads")
[ -n "$mem" ] && opts+=(--mem="$mem")
opts+=("${slurm_opts[@]}")
if [ "$gpu" -gt 0 ]; then
  opts+=("${slurm_gpu_opts[@]//GPUS/$gpu}")
fi
opts+=(--job-name="$name" --output="$log_dir/q/$name.%a.out" --array="$spec")
[ "$max_jobs_run" -gt 0 ] && opts[${#opts[@]}-1]+="%$max_jobs_run"

# sbatch --wait in the background, so that a TERM or Ctrl-C here can cancel the array
submit_log="$log_dir/q/$name.submit.log"
rc=0
"$slurm_sbatch" --wait --parsable "${opts[@]}" "$script" >"$submit_log" 2>&1 &
sbatch_pid=$!
job_id() { sed -n 's/^\([0-9][0-9]*\)\(;.*\)\{0,1\}$/\1/p' "$submit_log" | head -n 1; }
cancel() {
  local id
  id="$(job_id)"
  if [ -n "$id" ]; then
    echo "$0: interrupted; cancelling Slurm job $id" >&2
    "$slurm_scancel" "$id" || true
  fi
  kill "$sbatch_pid" 2>/dev/null || true
  exit 130
}
trap cancel INT TERM
wait "$sbatch_pid" || rc=$?
trap - INT TERM
id="$(job_id)"

failed=0
for job in "${todo[@]}"; do
  log="${log_pattern//JOB/$job}"
  if ! tail -n 1 "$log" 2>/dev/null | grep -q '^# Ended (code 0)'; then
    failed=$((failed + 1))
    {
      echo "$0: task $job failed (Slurm job ${id:-?}); its log: $log"
      if [ -f "$log" ]; then tail -n 20 "$log" | sed 's/^/    /'; else echo "    (the task wrote no log)"; fi
      out="$log_dir/q/$name.$job.out"
      if [ -s "$out" ]; then
        echo "  Slurm's output of the task, $out:"
        tail -n 5 "$out" | sed 's/^/    /'
      fi
    } >&2
  fi
done
if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
  echo "$0: $failed of ${#todo[@]} submitted tasks failed (Slurm job ${id:-?}, sbatch status $rc, see $submit_log); rerun to resubmit only the failed ones" >&2
  exit 1
fi
