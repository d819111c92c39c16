#!/usr/bin/env bash
# run_local.sh: run a command as N parallel jobs on this machine, one log per job.
#
#   run_local.sh [--max-jobs-run M] [--stdout FILE] [--gpu N] [--num-threads N] [JOB=1:N] LOG COMMAND [ARGS...]
#
# With JOB=1:N, job j runs COMMAND with every "JOB" in LOG and ARGS replaced by j
# (e.g. "--shard JOB/4" -> "--shard 2/4", "log/featurize.JOB.log" -> "log/featurize.2.log").
# The command runs as given (no shell re-parsing), with stdout and stderr in its log,
# which starts with the command line and ends with "# Ended (code C) ...".
# With --stdout FILE the command's stdout (its results) goes to FILE instead (JOB
# replaced too; written as FILE.tmp and renamed when the job succeeds).
# At most M jobs run at once (default: all). The exit status is 0 when every job
# succeeded; otherwise the logs of the failed jobs are printed to stderr (last lines)
# and the status is 1. --gpu and --num-threads are accepted for compatibility with
# run_slurm.sh and ignored here.
set -euo pipefail

max_jobs_run=0
stdout_pattern=""
while [ $# -gt 0 ]; do
  case "$1" in
    --max-jobs-run) max_jobs_run="$2"; shift 2 ;;
    --stdout) stdout_pattern="$2"; shift 2 ;;
    --gpu|--num-threads|--mem) shift 2 ;;
    *) break ;;
  esac
done

usage() {
  echo "usage: $0 [--max-jobs-run M] [JOB=1:N] LOG COMMAND [ARGS...]" >&2
  exit 2
}

# shellcheck source-path=SCRIPTDIR source=job_range.sh
. "$(dirname "${BASH_SOURCE[0]}")/job_range.sh"
parse_job_range "$@"
shift "$job_range_args"
[ $# -ge 2 ] || usage
log_pattern="$1"
shift
if [ "$array" = true ] && [ "$last" -gt "$first" ] && [[ $log_pattern != *JOB* ]]; then
  echo "$0: with several jobs the log name must contain JOB: $log_pattern" >&2
  exit 2
fi

run_one() {
  local job="$1" log="$2"
  shift 2
  local args=() arg start rc
  for arg in "$@"; do
    if [ "$array" = true ]; then
      args+=("${arg//JOB/$job}")
    else
      args+=("$arg")
    fi
  done
  mkdir -p "$(dirname "$log")"
  start=$(date +%s)
  {
    printf '#'
    printf ' %q' "${args[@]}"
    printf '\n# Started at %s on %s\n' "$(date)" "$(hostname)"
  } >"$log"
  rc=0
  if [ -n "$stdout_pattern" ]; then
    local out="${stdout_pattern//JOB/$job}"
    mkdir -p "$(dirname "$out")"
    "${args[@]}" >"$out.tmp" 2>>"$log" </dev/null || rc=$?
    if [ "$rc" -eq 0 ]; then mv "$out.tmp" "$out"; else rm -f "$out.tmp"; fi
  else
    "${args[@]}" >>"$log" 2>&1 </dev/null || rc=$?
  fi
  printf '# Accounting: time=%s s\n# Ended (code %s) at %s\n' "$(( $(date +%s) - start ))" "$rc" "$(date)" >>"$log"
  return "$rc"
}

pids=()
logs=()
for ((job = first; job <= last; job++)); do
  log="${log_pattern//JOB/$job}"
  if [ "$max_jobs_run" -gt 0 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$max_jobs_run" ]; do
      wait -n || true
    done
  fi
  run_one "$job" "$log" "$@" &
  pids+=("$!")
  logs+=("$log")
done

wait || true
# the exit status of each job is read from its log: "wait -n" above may have reaped it
failed=0
for i in "${!pids[@]}"; do
  if ! tail -n 1 "${logs[$i]}" 2>/dev/null | grep -q '^# Ended (code 0)'; then
    failed=$((failed + 1))
    {
      echo "$0: job failed, last lines of ${logs[$i]}:"
      tail -n 20 "${logs[$i]}" | sed 's/^/    /'
    } >&2
  fi
done
if [ "$failed" -gt 0 ]; then
  echo "$0: $failed of $((last - first + 1)) jobs failed (logs: ${log_pattern})" >&2
  exit 1
fi
