# shellcheck shell=bash
# parse_options.sh: turn "--foo-bar VALUE" command-line options into shell variables.
#
# Source it from a recipe after declaring every option variable with its default:
#
#     nj=4            # parallel jobs
#     work_dir=work   # where data/ and exp/ go
#     force=false     # redo stages whose outputs exist
#     help_message="Usage: $0 [options]"
#     . "$recipe_dir/utils/parse_options.sh"
#
# Contract (the same as Kaldi's utils/parse_options.sh; this file is written anew):
#   --foo-bar VALUE   sets foo_bar=VALUE; foo_bar must already be defined (it may be empty).
#   --foo-bar=VALUE   the same.
#   --flag            for a variable whose default is true or false, a bare option means
#                     true; "--flag true|false" is accepted too, anything else is an error.
#   --config FILE     reads "name=value" lines from FILE before the remaining options, as
#                     data: nothing in FILE is executed or expanded (see utils/read_conf.sh:
#                     blank lines and "# comments" are skipped, a value may be quoted). Each
#                     name must be an option, and its value is checked like the command
#                     line's; a bad line exits 2 naming FILE and the line number.
#   --help, -h        prints $help_message (if defined) and exits 0.
#   --                ends the options; arguments that do not start with "--" end them too.
# When the caller sets parse_options_names (a space-separated list of variable names),
# only those are options; otherwise any defined variable is (Kaldi's rule).
# An unknown option, a missing value or a bad boolean prints a message and exits 2.
# The parsed options are removed from the positional parameters ("$@") of the caller.

# shellcheck source-path=SCRIPTDIR source=read_conf.sh
. "$(dirname "${BASH_SOURCE[0]}")/read_conf.sh"

_po_fail() {
  echo "$0: $*" >&2
  echo "$0: run '$0 --help' for the list of options" >&2
  exit 2
}

# _po_known NAME: true when NAME is an option (see parse_options_names above).
_po_known() {
  if [ -n "${parse_options_names:-}" ]; then
    [[ " $parse_options_names " == *" $1 "* ]]
  else
    [ -n "${!1+set}" ]
  fi
}

# _po_set NAME VALUE CHECK_BOOL WHERE: assign an option (as data, with printf -v); a
# boolean option takes only true or false when CHECK_BOOL is true.
_po_set() {
  local old
  _po_known "$1" || _po_fail "${4}: unknown option"
  old="${!1-}"
  if [ "$3" = true ] && { [ "$old" = true ] || [ "$old" = false ]; } \
      && [ "$2" != true ] && [ "$2" != false ]; then
    _po_fail "$4 takes true or false, not '$2'"
  fi
  printf -v "$1" '%s' "$2"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      if [ -n "${help_message:-}" ]; then
        printf '%s\n' "$help_message"
      else
        echo "Usage: $0 [options] (no help message defined)"
      fi
      exit 0
      ;;
    --)
      shift
      break
      ;;
    --*=*)
      _po_name="${1%%=*}"
      _po_value="${1#*=}"
      _po_has_value=true
      shift
      ;;
    --*)
      _po_name="$1"
      _po_value=""
      _po_has_value=false
      shift
      ;;
    *)
      break
      ;;
  esac

  _po_var="${_po_name#--}"
  _po_var="${_po_var//-/_}"
  case "$_po_var" in
    ''|[0-9]*|*[!A-Za-z0-9_]*) _po_fail "invalid option name '$_po_name'" ;;
  esac

  if [ "$_po_var" = config ]; then
    if [ "$_po_has_value" = false ]; then
      [ $# -gt 0 ] || _po_fail "option --config needs a file"
      _po_value="$1"
      shift
    fi
    read_kv_conf "$_po_value"
    # shellcheck disable=SC2154  # conf_keys, conf_values, conf_lines: set by read_kv_conf
    for _po_i in "${!conf_keys[@]}"; do
      _po_set "${conf_keys[$_po_i]}" "${conf_values[$_po_i]}" true \
        "$_po_value:${conf_lines[$_po_i]}: '${conf_keys[$_po_i]}'"
    done
    continue
  fi

  _po_known "$_po_var" || _po_fail "unknown option '$_po_name'"

  _po_old="${!_po_var-}"
  if [ "$_po_has_value" = false ]; then
    if [ "$_po_old" = true ] || [ "$_po_old" = false ]; then
      # boolean: a bare flag means true; "--flag true|false" is accepted too
      if [ $# -gt 0 ] && { [ "$1" = true ] || [ "$1" = false ]; }; then
        _po_value="$1"
        shift
      else
        _po_value=true
      fi
    else
      [ $# -gt 0 ] || _po_fail "option $_po_name needs a value"
      _po_value="$1"
      shift
    fi
  fi
  _po_set "$_po_var" "$_po_value" "$_po_has_value" "option $_po_name"
done

unset _po_name _po_value _po_has_value _po_var _po_old _po_i
unset -f _po_fail _po_known _po_set
true
