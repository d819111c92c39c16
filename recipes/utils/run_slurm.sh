#!/usr/bin/env bash
# run_slurm.sh: run a command as a Slurm array job, one log per task; waits for it.
#
#   run_slurm.sh [--config conf/slurm.conf] [--gpu N] [--num-threads N] [--mem SIZE]
#                [--max-jobs-run M] [--stdout FILE] [JOB=1:N] LOG COMMAND [ARGS...]
#
# Same contract as run_local.sh: task j runs COMMAND with every "JOB" in LOG and ARGS
# replaced by j, stdout and stderr in its own log; the status is 0 only when every
# task succeeded, and the logs of failed tasks are printed. The job script is written
# beside the logs (q/NAME.sh) and submitted with "sbatch --wait --array=first-last".
# The config file is a bash fragment setting (see recipes/conf/slurm.conf):
#   slurm_opts=(...)       options for every job (partition, time limit, ...)
#   slurm_gpu_opts=(...)   extra options when --gpu N > 0 ("GPUS" is replaced by N)
#   slurm_sbatch=sbatch    the submit command (e.g. a wrapper script)
set -euo pipefail

config=""
gpu=0
num_threads=1
mem=""
max_jobs_run=0
stdout_pattern=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --gpu) gpu="$2"; shift 2 ;;
    --num-threads) num_threads="$2"; shift 2 ;;
    --mem) mem="$2"; shift 2 ;;
    --max-jobs-run) max_jobs_run="$2"; shift 2 ;;
    --stdout) stdout_pattern="$2"; shift 2 ;;
    *) break ;;
  esac
done

slurm_opts=()
slurm_gpu_opts=(--gres=gpu:GPUS)
slurm_sbatch=sbatch
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

opts=("${slurm_opts[@]}" --job-name="$name" --cpus-per-task="$num_threads"
      --output="$log_dir/q/$name.%a.out" --array="$first-$last")
[ "$max_jobs_run" -gt 0 ] && opts[${#opts[@]}-1]+="%$max_jobs_run"
[ -n "$mem" ] && opts+=(--mem="$mem")
if [ "$gpu" -gt 0 ]; then
  opts+=("${slurm_gpu_opts[@]//GPUS/$gpu}")
fi

rc=0
"$slurm_sbatch" --wait "${opts[@]}" "$script" >"$log_dir/q/$name.submit.log" 2>&1 || rc=$?

failed=0
for ((job = first; job <= last; job++)); do
  log="${log_pattern//JOB/$job}"
  if ! tail -n 1 "$log" 2>/dev/null | grep -q '^# Ended (code 0)'; then
    failed=$((failed + 1))
    {
      echo "$0: task $job failed, last lines of $log:"
      tail -n 20 "$log" 2>/dev/null | sed 's/^/    /' || echo "    (no log; see $log_dir/q/$name.$job.out)"
    } >&2
  fi
done
if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
  echo "$0: $failed of $((last - first + 1)) tasks failed (sbatch status $rc, see $log_dir/q/$name.submit.log)" >&2
  exit 1
fi
