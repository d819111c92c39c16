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
#   --config FILE     sources FILE (lines like "nj=8") before the remaining options.
#   --help, -h        prints $help_message (if defined) and exits 0.
#   --                ends the options; arguments that do not start with "--" end them too.
# An unknown option, a missing value or a bad boolean prints a message and exits 2.
# The parsed options are removed from the positional parameters ("$@") of the caller.

_po_fail() {
  echo "$0: $*" >&2
  echo "$0: run '$0 --help' for the list of options" >&2
  exit 2
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
    [ -f "$_po_value" ] || _po_fail "--config: file '$_po_value' not found"
    # shellcheck disable=SC1090
    . "$_po_value"
    continue
  fi

  if [ -z "${!_po_var+set}" ]; then
    _po_fail "unknown option '$_po_name'"
  fi

  _po_old="${!_po_var}"
  if [ "$_po_old" = true ] || [ "$_po_old" = false ]; then
    # boolean: a bare flag means true; an explicit value must be true or false
    if [ "$_po_has_value" = false ]; then
      if [ $# -gt 0 ] && { [ "$1" = true ] || [ "$1" = false ]; }; then
        _po_value="$1"
        shift
      else
        _po_value=true
      fi
    elif [ "$_po_value" != true ] && [ "$_po_value" != false ]; then
      _po_fail "option $_po_name takes true or false, not '$_po_value'"
    fi
  elif [ "$_po_has_value" = false ]; then
    [ $# -gt 0 ] || _po_fail "option $_po_name needs a value"
    _po_value="$1"
    shift
  fi
  printf -v "$_po_var" '%s' "$_po_value"
done

unset _po_name _po_value _po_has_value _po_var _po_old
unset -f _po_fail
true
