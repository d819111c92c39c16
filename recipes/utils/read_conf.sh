# shellcheck shell=bash disable=SC2094  # _conf_fail only names the file it reads
# read_conf.sh: read settings files as data, never as code (sourced by parse_options.sh
# and TEMPLATE/asc.sh). Nothing in a file is expanded or executed: "$(...)", "$X" and
# backquotes stay literal text.
#
#   read_kv_conf FILE     "name=value" lines: the --config FILE of the recipes
#   read_yaml_conf FILE   flat YAML: "key: value" lines, and sections of indented
#                         "key: value" lines under a "name:" line (one level only)
#
# Both fill the arrays conf_sections (empty at the top level), conf_keys, conf_values,
# conf_lines (line numbers) and conf_notes (the trailing comment, without "#").
# Blank lines and lines starting with "#" are skipped. A value is either quoted,
# "..." or '...' (taken verbatim, no escapes), or plain: the rest of the line, where a
# "#" at its start or after a blank begins a comment, without surrounding blanks.
# A malformed line prints "FILE:LINE: ..." and exits 2.

# conf_value TEXT: parse the value part of a line (what follows "=" or ":") into
# conf_val, conf_note and conf_quoted; status 1 when TEXT is malformed.
conf_value() {
  local text="$1" quote rest
  text="${text#"${text%%[![:space:]]*}"}"
  conf_note=""
  conf_quoted=false
  case "$text" in
    \"*|\'*)
      quote="${text:0:1}"
      rest="${text:1}"
      [[ $rest == *"$quote"* ]] || return 1
      conf_val="${rest%%"$quote"*}"
      conf_quoted=true
      rest="${rest#*"$quote"}"
      rest="${rest#"${rest%%[![:space:]]*}"}"
      case "$rest" in
        '') ;;
        \#*) conf_note="${rest#\#}" ;;
        *) return 1 ;;
      esac
      ;;
    \#*)
      conf_val=""
      conf_note="${text#\#}"
      ;;
    *)
      conf_val="${text%%[[:space:]]#*}"
      if [ "$conf_val" != "$text" ]; then
        conf_note="${text#*[[:space:]]#}"
      fi
      conf_val="${conf_val%"${conf_val##*[![:space:]]}"}"
      ;;
  esac
  conf_note="${conf_note#"${conf_note%%[![:space:]]*}"}"
  conf_note="${conf_note%"${conf_note##*[![:space:]]}"}"
}

_conf_fail() {  # _conf_fail FILE LINE MESSAGE
  echo "$0: $1:$2: $3" >&2
  exit 2
}

_conf_reset() {
  conf_sections=()
  conf_keys=()
  conf_values=()
  conf_lines=()
  conf_notes=()
}

_conf_add() {  # _conf_add SECTION KEY VALUE LINE NOTE
  conf_sections+=("$1")
  conf_keys+=("$2")
  conf_values+=("$3")
  conf_lines+=("$4")
  conf_notes+=("$5")
}

# read_kv_conf FILE: "name=value" lines (name: letters, digits, "_"; as the option's variable).
read_kv_conf() {
  local file="$1" line lineno=0
  if [ ! -f "$file" ] || [ ! -r "$file" ]; then echo "$0: --config: file '$file' not found" >&2; exit 2; fi
  _conf_reset
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line="${line%$'\r'}"
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]]; then
      conf_value "${BASH_REMATCH[2]}" || _conf_fail "$file" "$lineno" "bad quoting in '$line'"
      _conf_add "" "${BASH_REMATCH[1]}" "$conf_val" "$lineno" "$conf_note"
    else
      _conf_fail "$file" "$lineno" "expected 'name=value' (nothing is executed), got '$line'"
    fi
  done <"$file"
}

# read_yaml_conf FILE: a flat YAML mapping with one level of sections.
read_yaml_conf() {
  local file="$1" line lineno=0 section="" indent="" pending="" pending_line=0 pending_note="" key seen
  if [ ! -f "$file" ] || [ ! -r "$file" ]; then echo "$0: settings file '$file' not found" >&2; exit 2; fi
  _conf_reset
  seen=" "
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line="${line%$'\r'}"
    [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
    if [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*):([[:space:]].*)?$ ]]; then
      if [ -n "$pending" ]; then  # the previous key had no value and no section under it
        _conf_add "" "$pending" "" "$pending_line" "$pending_note"
      fi
      key="${BASH_REMATCH[1]}"
      conf_value "${BASH_REMATCH[2]}" || _conf_fail "$file" "$lineno" "bad quoting in '$line'"
      [[ $seen == *" $key "* ]] && _conf_fail "$file" "$lineno" "'$key' appears twice"
      seen+="$key "
      section=""
      indent=""
      pending=""
      if [ -z "$conf_val" ] && [ "$conf_quoted" = false ]; then
        pending="$key"  # a section, if indented lines follow
        pending_line="$lineno"
        pending_note="$conf_note"
      else
        _conf_add "" "$key" "$conf_val" "$lineno" "$conf_note"
      fi
    elif [[ $line =~ ^([ ]+)([A-Za-z_][A-Za-z0-9_]*):([[:space:]].*)?$ ]]; then
      if [ -n "$pending" ]; then
        section="$pending"
        indent="${BASH_REMATCH[1]}"
        pending=""
      fi
      [ -n "$section" ] || _conf_fail "$file" "$lineno" "indented line outside a section"
      [ "${BASH_REMATCH[1]}" = "$indent" ] || _conf_fail "$file" "$lineno" "indent differs from the section's first line (one level of sections only)"
      key="${BASH_REMATCH[2]}"
      conf_value "${BASH_REMATCH[3]}" || _conf_fail "$file" "$lineno" "bad quoting in '$line'"
      [[ $seen == *" $section.$key "* ]] && _conf_fail "$file" "$lineno" "'$key' appears twice in section '$section'"
      seen+="$section.$key "
      _conf_add "$section" "$key" "$conf_val" "$lineno" "$conf_note"
    else
      _conf_fail "$file" "$lineno" "expected 'key: value' (flat YAML: no lists, no nesting beyond one section level), got '$line'"
    fi
  done <"$file"
  if [ -n "$pending" ]; then
    _conf_add "" "$pending" "" "$pending_line" "$pending_note"
  fi
}
