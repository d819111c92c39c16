# shellcheck shell=bash disable=SC2154  # stage, stop_stage, force: set by the recipe
# common.sh: logging and stage guards shared by the recipes (sourced after parse_options.sh).
# Needs the recipe's variables stage, stop_stage and force.

current_stage=""

# log MESSAGE: "2026-01-01 12:00:00 (recipe.sh:123) MESSAGE" on stderr.
log() {
  printf '%s (%s:%s) %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$*" >&2
}

# die_usage MESSAGE: a usage error, exit status 2.
die_usage() {
  echo "$0: $*" >&2
  exit 2
}

# check_int NAME VALUE MIN: exit 2 unless VALUE is an integer >= MIN.
check_int() {
  if ! [[ $2 =~ ^[0-9]+$ ]] || [ "$2" -lt "$3" ]; then
    die_usage "--${1//_/-} must be an integer >= $3, not '$2'"
  fi
}

# in_range N: true when stage N is within --stage .. --stop-stage.
in_range() {
  [ "$stage" -le "$1" ] && [ "$1" -le "$stop_stage" ]
}

# run_stage N DESCRIPTION [OUTPUT...]: true when the step must run, logging "Stage N: ...".
# False (and logged as skipped) when N is out of range, or when every OUTPUT exists and
# --force is not given. Without OUTPUT the step always runs.
run_stage() {
  local n="$1" what="$2" out missing=false
  shift 2
  in_range "$n" || return 1
  for out in "$@"; do
    [ -e "$out" ] || missing=true
  done
  if [ $# -gt 0 ] && [ "$missing" = false ] && [ "$force" != true ]; then
    printf '%s (%s:%s) Stage %s: %s: skipped, outputs exist (--force to redo)\n' \
      "$(date '+%Y-%m-%d %H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$n" "$what" >&2
    return 1
  fi
  current_stage="$n"
  printf '%s (%s:%s) Stage %s: %s\n' \
    "$(date '+%Y-%m-%d %H:%M:%S')" "${BASH_SOURCE[1]##*/}" "${BASH_LINENO[0]}" "$n" "$what" >&2
}

# elapsed START_SECONDS: "1m23s" since START_SECONDS (a value of $SECONDS).
elapsed() {
  local s=$((SECONDS - $1))
  printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# on_error LINE: the ERR trap; says where it failed and how to resume.
on_error() {
  local where="${current_stage:-?}"
  printf '%s (%s:%s) FAILED in stage %s after %s. Fix the cause and rerun the same command:\n' \
    "$(date '+%Y-%m-%d %H:%M:%S')" "${BASH_SOURCE[1]##*/}" "$1" "$where" "$(elapsed "${start_time:-0}")" >&2
  printf '    finished steps are skipped, so it resumes at the failed one (or add --stage %s).\n' "$where" >&2
}
