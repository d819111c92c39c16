#!/usr/bin/env bash
# job_range.sh: sourced by run_local.sh and run_slurm.sh.
#
#   parse_job_range "$@"; shift "$job_range_args"
#
# Reads an optional leading JOB=FIRST:LAST argument and sets first, last and
# array (true when the argument was given); job_range_args is how many arguments
# it consumed (0 or 1). An empty range (FIRST > LAST) exits with status 2.

# shellcheck disable=SC2034  # first, last, array, job_range_args are read by the caller
parse_job_range() {
  first=1
  last=1
  array=false
  job_range_args=0
  if [[ ${1:-} =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    first="${BASH_REMATCH[1]}"
    last="${BASH_REMATCH[2]}"
    array=true
    job_range_args=1
    [ "$first" -le "$last" ] || { echo "$0: empty job range JOB=$first:$last" >&2; exit 2; }
  fi
}
