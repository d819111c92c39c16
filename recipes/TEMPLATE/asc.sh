# shellcheck shell=bash disable=SC2154  # options are declared by option() and the conf file, with printf -v
# recipes/TEMPLATE/asc.sh: the stage logic every system's recipe shares (the layout of
# ESPnet's egs2/TEMPLATE: one template, a thin script per system). See docs/recipes.md.
#
# A system is two files:
#   recipes/SYSTEM.sh         sets the variables below and sources this file (~40 lines)
#   recipes/conf/SYSTEM.yaml  its models and training settings, read as data (flat YAML)
#
# Variables the system's script sets before sourcing this file:
#   system      the name: settings in recipes/conf/$system.yaml, default work dir exp/$system
#   title       start of the RESULTS.md title, e.g. "DCASE 2020 Task 1a"
#   about       one line for --help
#   data_about  what --data-root points to
#   stages      the stage names in order; stage N is the N-th, counted from 0. Known stages:
#                 synth      asctool synth the demo data (only without --data-root)
#                 prepare    asctool prepare: manifests data/SETUP_{train,evaluate,test}.tsv
#                 split      asctool split: train_sub.tsv + valid.tsv, whole locations held out
#                 augment    asctool augment: one copy of the training set per method
#                 featurize  asctool featurize, --nj shards per set, combined into feats/SET.h5
#                 embed      asctool embed (the conf's extractor) into emb/SET.h5: train and predict
#                            then read embeddings instead of features
#                 tag        asctool tag (the conf's tagger; asctool: trained first by train --task
#                            tagging on the manifests' tags column) into tags/SET.h5; every model
#                            is then trained once per mode of tag_fusions (none: the backbone alone)
#                 train      asctool train, every model of every group
#                 quantize   asctool quantize every model, then asctool check-size
#                 predict    asctool predict on the evaluation set (and validation, with split)
#                 combine    asctool ensemble per group, asctool fuse
#                 score      asctool score --json of every model, ensemble and fusion
#                 results    asctool results: exp/RESULTS.md, printed
#                 cam        asctool cam of the first evaluation clips
#   aliases     deprecated option names, "old_name:new_name ..." (may be empty)
#
# Options: those declared below, and every top-level key of the conf file; --help lists
# them. Precedence: defaults < conf file < --config FILE < command line; then the conf's
# section of the profile (paper, demo) and its section "dataset" (with --data-root) or
# "synthesized" (without) fill the options that are still empty.
#
# Models come in groups (the conf's "groups", e.g. "fine coarse"; empty: one unnamed
# group). Group G has the settings G_models (run folders exp/G_MODEL), G_labels (scene or
# coarse), G_ensembles ("DIR:METHOD[:fit] ...", ":fit" = fitted on validation scores),
# optionally G_augmented (false: train on the training set alone, without the augmented
# copies) and G_epochs (the group's own --epochs), and, per model, G_MODEL_option
# (KEY=VALUE for asctool train --option). The unnamed group's are models, labels,
# ensembles, augmented, epochs and MODEL_option (run folders exp/MODEL).
set -Eeuo pipefail

: "${system:?}" "${title:?}" "${about:?}" "${data_about:?}" "${stages:?}" "${aliases?}"
recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
conf_file="$recipe_dir/conf/$system.yaml"
invocation="$(printf '%q ' "$0" "$@")"
recipe_args=("$@")   # --folds runs the recipe again per fold with these
start_time=$SECONDS

# shellcheck source-path=SCRIPTDIR source=../utils/read_conf.sh
. "$recipe_dir/utils/read_conf.sh"

read -ra stage_list <<<"$stages"
has() {  # has STAGE: the system has this stage
  [[ " ${stage_list[*]} " == *" $1 "* ]]
}

# ---- options (every one settable as --foo-bar VALUE) ----
opt_names=()
declare -A opt_arg=() opt_help=() opt_hidden=()
option() {  # option NAME DEFAULT ARG HELP
  printf -v "$1" '%s' "$2"
  opt_names+=("$1")
  opt_arg[$1]="$3"
  opt_help[$1]="$4"
}
setting() {  # setting NAME DEFAULT ARG HELP: an option listed by --help only when the conf sets it
  option "$@"
  opt_hidden[$1]=true
}
option stage 0 N "first stage"
option stop_stage 100 M "last stage"
option nj 4 N "parallel jobs (featurize shards, augment and synth workers)"
option backend "" NAME "local or slurm (see recipes/cmd.sh) [\${ASCTOOL_BACKEND:-local}]"
option data_root "" DIR "$data_about$(has synth && printf ' (empty: synthesized demo data)')"
option profile "" NAME "training profile, a section of the conf"
option work_dir "exp/$system" DIR "folder for db/, data/ and exp/"
option data_dir "" DIR "data folder [WORK_DIR/data]"
option exp "" DIR "experiment folder [WORK_DIR/exp]"
option setup fold1 NAME "evaluation setup"
option folds "" LIST "cross-validation: comma-separated folds (e.g. 1,2,3,4,5); each fold runs every stage in DATA_DIR/foldK and EXP/foldK, RESULTS.md gives mean ± std"
option fold "" K "one fold of a metadata-CSV layout: asctool prepare --fold K (set by --folds)"
if has augment; then
  option augmentations "" LIST "quoted list of augment methods, or none [profile's]"
  option simulate_rooms "" N "simulated rooms for reverb methods [profile's]"
  option rir_dir "" DIR "measured impulse responses for reverb methods"
  option augment_devices "" LIST "source devices to augment, e.g. a or a,b,c; all: each method's default [profile's]"
fi
option clips_per_class "" N "synthesized clips per scene (demo data) [profile's]"
option epochs "" N "training epochs [profile's]"
option width "" X "model width multiplier [profile's]"
option batch_size "" N "training batch size [trainer's, or the profile's]"
option crop "" N "training random-crop length in frames [trainer's, or the profile's]"
option valid_split "" X "fraction of each class's training locations held out for validation"
if has quantize; then
  option quant_mode "" MODE "dynamic, float16 or int8"
  option max_kb "" N "budget of the quantised models together, KB of 1024 bytes"
  option size_rule "" RULE "dcase (parameters x bits) or file (.tflite sizes)"
fi
if has cam; then
  option cam_clips "" N "class activation maps of the first N evaluation clips (0: none)"
  option cam_groups "" LIST "the first model of each of these groups draws the maps"
fi
option seed 0 N "random seed"
option force false "" "rerun stages whose outputs exist (passes --force to them)"
# settings a conf file gives (options too)
setting preset "" NAME "front end of asctool featurize"
option duration "" SECONDS "clip length of the front end: seconds or auto (featurize --duration) [the preset's]"
option pad_tolerance "" FRACTION "zero-pad clips lacking at most this fraction of the duration; 1: any shorter clip (featurize --pad-tolerance) [the preset's]"
option resample "" HZ "resample clips of another rate: preset (to the front end's rate) or a rate in Hz (featurize --resample)"
setting groups "" LIST "model groups (empty: one unnamed group)"
setting synth_opts "" ARGS "more asctool synth options for the demo data"
setting fusion "" DIR "two-stage fusion of the ensembles fusion_fine and fusion_coarse into exp/DIR"
setting fusion_fine "" DIR "fine (10-class) member of the fusion"
setting fusion_coarse "" DIR "coarse (3-class) member of the fusion"
setting fusion_weight "" W "coarse weight of the fusion: a number, or valid (chosen on validation scores; needs a split stage) [1]"
setting published none TASK "RESULTS.md ends with the published figures of this task (1a, 1b or none)"
setting train_profile "" NAME "asctool train --profile [the recipe's profile]"
setting linear_probe false BOOL "also train a linear probe (logreg on clip log-mel band mean and std) as a RESULTS.md row"
setting linear_models logreg LIST "models that are linear back-ends (run folder holds model.json, not model.keras)"
if has embed; then
  setting extractor "" NAME "extractor of asctool embed"
  setting extractor_opts "" ARGS "more asctool embed options"
  option weights "" FILE "weight file of the extractor (openl3: asctool download openl3 fetches it)"
fi
if has tag; then
  option tagger "" NAME "tagger of asctool tag: asctool (trained on the tags column), birdnet, keras or tflite"
  option tagger_opts "" ARGS "more asctool tag options (e.g. --tag-subset FILE)"
  setting tagger_model "" NAME "asctool tagger: the backbone of asctool train --task tagging"
  setting tagger_train_opts "" ARGS "asctool tagger: more asctool train --task tagging options"
  setting tag_fusions none LIST "every model once per tag fusion mode (none: the backbone alone; docs/tag_fusion.md)"
fi

for name in "${stage_list[@]}"; do
  case "$name" in
    synth|prepare|split|augment|featurize|embed|tag|train|quantize|predict|combine|score|results|cam) ;;
    *) echo "$0: unknown stage '$name' in stages=\"$stages\"" >&2; exit 2 ;;
  esac
done

# ---- the system's conf file: validated, then its top-level keys set ----
gkey() {  # gkey GROUP KEY: the variable name of a group setting
  if [ -n "$1" ]; then printf '%s_%s' "$1" "$2"; else printf '%s' "$2"; fi
}
gval() {  # gval GROUP KEY: its value
  local var
  var="$(gkey "$1" "$2")"
  printf '%s' "${!var-}"
}
read_yaml_conf "$conf_file"
sys_sections=("${conf_sections[@]}")
sys_keys=("${conf_keys[@]}")
sys_values=("${conf_values[@]}")
sys_lines=("${conf_lines[@]}")
sys_notes=("${conf_notes[@]}")
for i in "${!sys_keys[@]}"; do
  if [ -z "${sys_sections[$i]}" ] && [ "${sys_keys[$i]}" = groups ]; then groups="${sys_values[$i]}"; fi
done
group_keys=" "
if [ -z "$groups" ]; then group_list=(""); else read -ra group_list <<<"$groups"; fi
for g in "${group_list[@]}"; do
  for key in models labels ensembles augmented epochs; do group_keys+="$(gkey "$g" "$key") "; done
done
is_option() {
  [[ " ${opt_names[*]} " == *" $1 "* ]]
}
conf_key_ok() {  # conf_key_ok KEY: a top-level key the template knows
  local g
  is_option "$1" && return 0
  [[ $group_keys == *" $1 "* ]] && return 0
  for g in "${group_list[@]}"; do
    [[ $1 =~ ^${g:+${g}_}[A-Za-z0-9_]+_option$ ]] && return 0
  done
  return 1
}
profiles=()
for i in "${!sys_keys[@]}"; do
  key="${sys_keys[$i]}"
  section="${sys_sections[$i]}"
  where="$conf_file:${sys_lines[$i]}"
  if [ -z "$section" ]; then
    conf_key_ok "$key" || { echo "$0: $where: unknown setting '$key'" >&2; exit 2; }
    printf -v "$key" '%s' "${sys_values[$i]}"
    opt_hidden[$key]=false
    if ! is_option "$key"; then
      opt_names+=("$key")
      case "${sys_values[$i]}" in
        *' '*) opt_arg[$key]=LIST ;;
        *=*) opt_arg[$key]=KEY=VALUE ;;
        true|false) opt_arg[$key]=BOOL ;;
        *) opt_arg[$key]=VALUE ;;
      esac
    fi
    if [ -n "${sys_notes[$i]}" ]; then opt_help[$key]="${sys_notes[$i]}"; fi
  else
    case "$section" in
      dataset|synthesized) ;;
      *) [[ " ${profiles[*]} " == *" $section "* ]] || profiles+=("$section") ;;
    esac
  fi
done
for i in "${!sys_keys[@]}"; do  # section keys: options declared above or at the top level
  if [ -n "${sys_sections[$i]}" ] && ! is_option "${sys_keys[$i]}"; then
    echo "$0: $conf_file:${sys_lines[$i]}: unknown option '${sys_keys[$i]}' in section '${sys_sections[$i]}'" >&2
    exit 2
  fi
done
[ ${#profiles[@]} -gt 0 ] || profiles=(paper demo)
opt_help[profile]="${profiles[*]}"
opt_help[profile]="${opt_help[profile]// / or } [$(has synth && echo "paper with --data-root, else demo" || echo "${profiles[0]}")]"
alias_list=()
read -ra alias_list <<<"$aliases"
for pair in "${alias_list[@]}"; do
  new="${pair#*:}"
  option "${pair%%:*}" "" "${opt_arg[$new]-}" "deprecated name of --${new//_/-}"
done

help_message="Usage: $0 [options]
$about
Options (defaults in brackets; the system's settings are in recipes/conf/$system.yaml):"
for name in "${opt_names[@]}"; do
  [ "${opt_hidden[$name]-}" != true ] || continue
  text="${opt_help[$name]-}"
  if [[ $text != *\[*\]* ]] && [ -n "${!name}" ] && [ -n "${opt_arg[$name]}" ]; then text+=" [${!name}]"; fi
  flag="--${name//_/-}${opt_arg[$name]:+ ${opt_arg[$name]}}"
  help_message+=$'\n'"$(printf '  %-22s %s' "$flag" "$text")"
done
help_message+=$'\n'"  --config FILE          read option values from FILE (name=value lines; nothing is executed)"
numbered=()
for i in "${!stage_list[@]}"; do numbered+=("$i ${stage_list[$i]}"); done
help_message+=$'\n'"Stages: $(IFS=,; printf '%s' "${numbered[*]}" | sed 's/,/, /g')."

# shellcheck disable=SC2034  # read by parse_options.sh
parse_options_names="${opt_names[*]}"
# shellcheck source-path=SCRIPTDIR source=../utils/parse_options.sh
. "$recipe_dir/utils/parse_options.sh"
if [ $# -gt 0 ]; then
  echo "$0: unexpected argument '$1' (options only; see --help)" >&2
  exit 2
fi
# shellcheck source-path=SCRIPTDIR source=../cmd.sh
. "$recipe_dir/cmd.sh"
# shellcheck source-path=SCRIPTDIR source=../utils/common.sh
. "$recipe_dir/utils/common.sh"

for pair in "${alias_list[@]}"; do
  old="${pair%%:*}"
  new="${pair#*:}"
  if [ -n "${!old}" ]; then
    log "WARNING: --${old//_/-} is deprecated, use --${new//_/-} (taking ${!old})"
    printf -v "$new" '%s' "${!old}"
  fi
done

# ---- defaults that depend on the profile and on the data ----
fill_from_section() {  # fill_from_section NAME: the section's values, for options still empty
  local i key
  for i in "${!sys_keys[@]}"; do
    [ "${sys_sections[$i]}" = "$1" ] || continue
    key="${sys_keys[$i]}"
    if [ -z "${!key}" ]; then printf -v "$key" '%s' "${sys_values[$i]}"; fi
  done
}
if [ -z "$profile" ]; then
  if [ -n "$data_root" ]; then profile=paper; else profile=demo; fi
  has synth || profile="${profiles[0]}"   # a system for given data only: its conf's first profile
fi
if [[ " ${profiles[*]} " != *" $profile "* ]]; then
  die_usage "--profile must be ${opt_help[profile]%% \[*}, not '$profile'"
fi
fill_from_section "$profile"
if [ -n "$data_root" ]; then
  fill_from_section dataset
  synthesize=false
elif has synth; then
  fill_from_section synthesized
  data_root="$work_dir/db"
  synthesize=true
else
  die_usage "--data-root is required (this system has no synth stage)"
fi
: "${data_dir:=$work_dir/data}"
: "${exp:=$work_dir/exp}"
check_int nj "$nj" 1
check_int stage "$stage" 0
check_int stop_stage "$stop_stage" 0
if has augment && [ "$augmentations" = none ]; then augmentations=""; fi
if has cam; then check_int cam_clips "$cam_clips" 0; fi
if has quantize; then
  case "$quant_mode" in dynamic|float16|int8) ;; *) die_usage "--quant-mode must be dynamic, float16 or int8" ;; esac
  case "$size_rule" in dcase|file) ;; *) die_usage "--size-rule must be dcase or file, not '$size_rule'" ;; esac
  check_int max_kb "$max_kb" 1
  max_bytes=$((max_kb * 1024))
fi
if has featurize && [ -z "$preset" ]; then die_usage "no front end: set preset in $conf_file"; fi
case "$fusion_weight" in
  ''|valid) ;;
  *) [[ $fusion_weight =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "--fusion-weight must be a number or valid, not '$fusion_weight'" ;;
esac
if [ "$fusion_weight" = valid ] && ! has split; then
  die_usage "--fusion-weight valid chooses the weight on validation scores: the system needs a split stage"
fi
if [ "$linear_probe" = true ] && ! has featurize; then die_usage "--linear-probe true needs a featurize stage"; fi
if has embed; then
  [ -n "$extractor" ] || die_usage "no extractor: set extractor in $conf_file"
  if [ "$extractor" = openl3 ] && [ ! -f "$weights" ]; then
    die_usage "openl3 needs its weight file${weights:+ ($weights is not a file)}: run asctool download openl3 --input-repr mel256 --content-type music --out-dir DIR, then give --weights DIR/FILE"
  fi
fi
if has tag; then
  [ -n "$tagger" ] || die_usage "no tagger: set tagger in $conf_file"
  if [ "$tagger" = asctool ] && { [ -z "$tagger_model" ] || ! has featurize; }; then
    die_usage "the asctool tagger is trained on features: it needs a featurize stage and tagger_model (a backbone)"
  fi
  if has augment || has quantize; then die_usage "a tag stage goes without augment and quantize stages (fused models run from .keras)"; fi
fi

# ---- what the stages make, by name ----
train_tsv="$data_dir/${setup}_train.tsv"
eval_tsv="$data_dir/${setup}_evaluate.tsv"
feats="$data_dir/feats"
inputs_dir="$feats"   # what train and predict read: features, or embeddings with an embed stage
if has embed; then inputs_dir="$data_dir/emb"; fi
model_file() {  # model_file MODEL [KIND]: the file a run of MODEL writes (KIND tflite: the quantised one)
  if [ -n "${2-}" ]; then echo "model.$2"; elif [[ " $linear_models " == *" $1 "* ]]; then echo model.json; else echo model.keras; fi
}
if has split; then
  train_set=train_sub
  source_tsv="$data_dir/train_sub.tsv"
else
  train_set=train
  source_tsv="$train_tsv"
fi
methods=()
aug_sets=()
if has augment; then read -ra methods <<<"$augmentations"; fi
for method in "${methods[@]}"; do aug_sets+=("aug_$method"); done
feature_sets=("$train_set")
if has split; then feature_sets+=(valid); fi
feature_sets+=(evaluate "${aug_sets[@]}")
manifest_of() {  # manifest_of SET
  case "$1" in
    train) echo "$train_tsv" ;;
    evaluate) echo "$eval_tsv" ;;
    *) echo "$data_dir/$1.tsv" ;;
  esac
}
if has quantize; then kinds=(keras tflite); else kinds=(""); fi
final="${kinds[${#kinds[@]} - 1]}"   # the kind of model the ensembles combine

label_opts_of() {  # label_opts_of LABELS: the --labels option of ensemble and score
  if [ "$1" != scene ]; then printf '%s\n' --labels "$1"; fi
}
if [ -z "$groups" ]; then group_list=(""); else read -ra group_list <<<"$groups"; fi
for g in "${group_list[@]}"; do
  [ -z "$g" ] || [[ $g =~ ^[A-Za-z][A-Za-z0-9_]*$ ]] || die_usage "--groups: '$g' is not a name (letters, digits, _)"
done
run_names=() run_model=() run_label=() run_opts=() run_group=() run_fusion=() run_aug=() run_epochs=()
fusion_list=(none)
if has tag; then read -ra fusion_list <<<"$tag_fusions"; fi
tags_dir="$data_dir/tags"   # tags/train.h5 (the whole training manifest: train_sub and valid), tags/evaluate.h5
for g in "${group_list[@]}"; do
  g_label="$(gval "$g" labels)"
  case "$g_label" in scene|coarse) ;; *) [ -f "$g_label" ] || die_usage "--$(gkey "$g" labels | tr _ -) must be scene, coarse or a label map file (TSV scene<TAB>label, as asctool train --labels), not '$g_label'" ;; esac
  g_aug="$(gval "$g" augmented)"
  case "$g_aug" in ''|true|false) ;; *) die_usage "--$(gkey "$g" augmented | tr _ -) must be true or false, not '$g_aug'" ;; esac
  g_epochs="$(gval "$g" epochs)"
  if [ -n "$g_epochs" ]; then check_int "$(gkey "$g" epochs)" "$g_epochs" 1; fi
  read -ra model_list <<<"$(gval "$g" models)"
  for model in "${model_list[@]}"; do
    [[ $model =~ ^[a-z][a-z0-9_]*$ ]] \
      || die_usage "--$(gkey "$g" models | tr _ -): '$model' is not a model name (lower-case letters, digits, _; asctool models lists them)"
    for mode in "${fusion_list[@]}"; do   # one run per tag fusion mode (a tag stage); none: the backbone alone
      [[ $mode =~ ^[a-z]+(:[0-9]+(,[0-9]+)?(,shared|,separate)?)?$ ]] \
        || die_usage "--tag-fusions: '$mode' is not a fusion mode (none, codecat, concat, concat:K, attention:H,K, both:H,K[,shared|separate])"
      suffix="${mode//:/_}"
      suffix="_${suffix//,/-}"
      if [ "$mode" = none ]; then suffix=""; fi
      run_names+=("${g:+${g}_}$model$suffix")
      run_model+=("$model")
      run_label+=("$g_label")
      run_opts+=("$(gval "$g" "${model}_option")")
      run_group+=("$g")
      run_fusion+=("${mode#none}")
      run_aug+=("${g_aug:-true}")
      run_epochs+=("$g_epochs")
    done
  done
done
split_label="${run_label[0]:-scene}"   # the split holds out by the classes of the first group

sys_names=() sys_scores=() sys_reports=() sys_label=()
add_system() {  # add_system NAME SCORES REPORT LABELS
  sys_names+=("$1")
  sys_scores+=("$2")
  sys_reports+=("$3")
  sys_label+=("$4")
}
for i in "${!run_names[@]}"; do
  for kind in "${kinds[@]}"; do
    add_system "${run_names[$i]}${kind:+/$kind}" "$exp/${run_names[$i]}/scores_evaluate${kind:+_$kind}.h5" \
      "$exp/${run_names[$i]}/report_evaluate${kind:+_$kind}.json" "${run_label[$i]}"
  done
done
ens_dirs=() ens_methods=() ens_fit=() ens_group=()
for g in "${group_list[@]}"; do
  read -ra specs <<<"$(gval "$g" ensembles)"
  for spec in "${specs[@]}"; do
    [[ $spec =~ ^([A-Za-z0-9_.-]+):([A-Za-z0-9_-]+)(:fit)?$ ]] \
      || die_usage "--$(gkey "$g" ensembles | tr _ -): '$spec' is not DIR:METHOD or DIR:METHOD:fit"
    if [ -n "${BASH_REMATCH[3]}" ] && ! has split; then
      die_usage "ensemble $spec is fitted on validation scores: the system needs a split stage"
    fi
    ens_dirs+=("${BASH_REMATCH[1]}")
    ens_methods+=("${BASH_REMATCH[2]}")
    ens_fit+=("${BASH_REMATCH[3]:+true}")
    ens_group+=("$g")
    add_system "${BASH_REMATCH[1]}" "$exp/${BASH_REMATCH[1]}/scores_evaluate.h5" \
      "$exp/${BASH_REMATCH[1]}/report_evaluate.json" "$(gval "$g" labels)"
  done
done
if [ "$linear_probe" = true ]; then
  add_system linear_probe "$exp/linear_probe/scores_evaluate.h5" "$exp/linear_probe/report_evaluate.json" scene
fi
if [ -n "$fusion" ]; then
  fused_label=""
  for i in "${!sys_names[@]}"; do
    if [ "${sys_names[$i]}" = "$fusion_fine" ]; then fused_label="${sys_label[$i]}"; fi
  done
  if [ -z "$fused_label" ] || [ -z "$fusion_coarse" ]; then
    die_usage "--fusion $fusion needs --fusion-fine and --fusion-coarse naming models or ensembles"
  fi
  add_system "$fusion" "$exp/$fusion/scores_evaluate.h5" "$exp/$fusion/report_evaluate.json" "$fused_label"
fi
valid_scores_of() {  # valid_scores_of SYSTEM: valid_scores, its scores on the split's validation set
  local i run="${1%/*}" kind=""
  [[ $1 == */* ]] && kind="${1#*/}"
  for i in "${!ens_dirs[@]}"; do
    if [ "${ens_dirs[$i]}" = "$1" ]; then
      [ -z "${ens_fit[$i]}" ] || die_usage "--fusion-weight valid: ensemble $1 is fitted on the validation scores, so it has none of its own (fuse models or unfitted ensembles)"
      valid_scores="$exp/$1/scores_valid.h5"
      return 0
    fi
  done
  [ "$kind" = "$final" ] || die_usage "--fusion-weight valid: $1 has no validation scores (only ${final:-keras} models are scored on the validation set)"
  valid_scores="$exp/$run/scores_valid${kind:+_$kind}.h5"
}
fuse_opts=()
if [ -n "$fusion" ] && [ "$fusion_weight" = valid ]; then
  valid_scores_of "$fusion_fine"
  fuse_opts=(--choose-weight-on "$valid_scores")
  valid_scores_of "$fusion_coarse"
  fuse_opts+=("$valid_scores")
elif [ -n "$fusion_weight" ]; then
  fuse_opts=(--coarse-weight "$fusion_weight")
fi

read -ra synth_args <<<"$synth_opts"
# Every asctool stage refuses to overwrite an existing output without --force. A stage whose
# guard lets it run again passes:
#   --force always where it writes several files and an interrupted run may have left some
#     (synth, prepare, split, the featurize shards, cam) or where it is always rebuilt (results);
#   "${force_opt[@]}" (the recipe's --force) where it writes one file atomically (featurize
#     --combine, quantize, predict, ensemble, fuse, score) or resumes an interrupted run itself
#     (augment; train takes --resume).
force_opt=()
if [ "$force" = true ]; then force_opt=(--force); fi
set_train_opts() {  # set_train_opts EPOCHS: train_opts, the asctool train options of a run
  train_opts=(--profile "${train_profile:-$profile}" --seed "$seed")
  if ! has split && [ -n "$valid_split" ]; then train_opts+=(--valid-split "$valid_split"); fi
  if [ -n "$1" ]; then train_opts+=(--epochs "$1"); fi
  if [ -n "$width" ]; then train_opts+=(--width "$width"); fi
  if [ -n "$crop" ]; then train_opts+=(--crop "$crop"); fi
  if [ -n "$batch_size" ]; then train_opts+=(--batch-size "$batch_size"); fi
}

# ---- the stages (each uses $n, its number) ----
set_classes_opt() {  # classes_opt: --classes FILE when prepare wrote the data's own class set (not DCASE's)
  classes_opt=()
  if [ -f "$data_dir/${setup}_classes.txt" ]; then classes_opt=(--classes "$data_dir/${setup}_classes.txt"); fi
}

stage_synth() {
  if [ "$synthesize" = true ] \
      && run_stage "$n" "synthesize the demo dataset in $data_root${synth_opts:+ ($synth_opts)}" "$data_root/meta.csv"; then
    "${cpu_cmd[@]}" --num-threads "$nj" "$exp/log/synth.log" \
      asctool synth --out-dir "$data_root" --clips-per-class "$clips_per_class" "${synth_args[@]}" \
      --nj "$nj" --seed "$seed" --force
  fi
}

stage_prepare() {
  local fold_opt=()
  if [ -n "$fold" ]; then fold_opt=(--fold "$fold"); fi
  if run_stage "$n" "prepare manifests from $data_root${fold:+, fold $fold}" "$train_tsv" "$eval_tsv"; then
    "${cpu_cmd[@]}" "$exp/log/prepare.log" \
      asctool prepare --dataset-root "$data_root" --out-dir "$data_dir" --setup "$setup" "${fold_opt[@]}" --force
  fi
  if in_range "$n" && [ ! -f "$eval_tsv" ]; then   # e.g. a folder per class: nothing to evaluate on
    log "$data_root has no evaluation set (prepare wrote no $eval_tsv); a metadata CSV needs --fold K or --folds, a folder per class an evaluation set held out with asctool split (docs/own-data.md)"; exit 1
  fi
}

stage_split() {  # validation from the training side: whole locations, the draw of train --valid-split
  local classes_opt
  if run_stage "$n" "hold out $valid_split of the training locations per $split_label class for validation" \
      "$data_dir/train_sub.tsv" "$data_dir/valid.tsv"; then
    set_classes_opt
    "${cpu_cmd[@]}" "$exp/log/split.log" \
      asctool split --manifest "$train_tsv" --out-train "$data_dir/train_sub.tsv" --out-valid "$data_dir/valid.tsv" \
      --valid-split "$valid_split" --labels "$split_label" --seed "$seed" "${classes_opt[@]}" --force
  fi
}

stage_augment() {  # offline augmentation (sources checked against the evaluation locations)
  local method out_tsv method_opts classes_opt
  set_classes_opt
  for method in "${methods[@]}"; do
    out_tsv="$data_dir/aug_$method.tsv"
    if run_stage "$n" "augment $method" "$out_tsv"; then
      method_opts=()
      if [ "$augment_devices" != all ]; then method_opts+=(--devices "$augment_devices"); fi
      case "$method" in
        reverb|reverb-drc)
          if [ -n "$rir_dir" ]; then method_opts+=(--rir-dir "$rir_dir"); else method_opts+=(--simulate-rooms "$simulate_rooms"); fi
          ;;
      esac
      "${cpu_cmd[@]}" --num-threads "$nj" "$exp/log/augment_$method.log" \
        asctool augment "$method" --manifest "$source_tsv" --out-dir "$data_dir/aug/$method" \
        --out-manifest "$out_tsv" --exclude-locations "$eval_tsv" "${method_opts[@]}" \
        --nj "$nj" --seed "$seed" "${classes_opt[@]}" "${force_opt[@]}"
    fi
  done
}

stage_featurize() {  # --nj shards per set, then combined (virtual dataset)
  local set shards j feat_opts=() classes_opt
  in_range "$n" || return 0
  set_classes_opt
  if [ -n "$duration" ]; then feat_opts+=(--duration "$duration"); fi
  if [ -n "$pad_tolerance" ]; then feat_opts+=(--pad-tolerance "$pad_tolerance"); fi
  case "$resample" in
    '') ;;
    preset) feat_opts+=(--resample) ;;
    *) feat_opts+=(--resample "$resample") ;;
  esac
  for set in "${feature_sets[@]}"; do
    if run_stage "$n" "featurize $set ($nj shards, preset $preset${feat_opts[*]:+ ${feat_opts[*]}})" "$feats/$set.h5"; then
      "${cpu_cmd[@]}" JOB=1:"$nj" "$exp/log/featurize_$set.JOB.log" \
        asctool featurize --manifest "$(manifest_of "$set")" --out "$feats/$set/shard.JOB.h5" \
        --preset "$preset" "${feat_opts[@]}" "${classes_opt[@]}" --shard "JOB/$nj" --force
      shards=()
      for ((j = 1; j <= nj; j++)); do shards+=(--combine "$feats/$set/shard.$j.h5"); done
      "${cpu_cmd[@]}" "$exp/log/featurize_$set.combine.log" \
        asctool featurize --out "$feats/$set.h5" "${shards[@]}" "${force_opt[@]}"
    fi
  done
  log "Features of the training set:"
  asctool inspect "$feats/$train_set.h5"
}

stage_embed() {  # pretrained embeddings of every set
  local set extractor_args weight_opts=()
  read -ra extractor_args <<<"$extractor_opts"
  if [ -n "$weights" ]; then weight_opts=(--weights "$weights"); fi
  for set in "${feature_sets[@]}"; do
    if run_stage "$n" "embed $set with extractor $extractor${extractor_opts:+ ($extractor_opts)}" "$inputs_dir/$set.h5"; then
      "${gpu_cmd[@]}" --num-threads "$nj" "$exp/log/embed_$set.log" \
        asctool embed --manifest "$(manifest_of "$set")" --extractor "$extractor" "${extractor_args[@]}" \
        "${weight_opts[@]}" --out "$inputs_dir/$set.h5" --nj "$nj" "${force_opt[@]}"
    fi
  done
  log "Embeddings of the training set (extractor $extractor):"
  asctool inspect "$inputs_dir/$train_set.h5"
}

stage_tag() {  # a tag vector per clip: the training manifest (with a split: train_sub and valid) and evaluation
  local set tsv tag_args train_args run_opt=(--tagger "$tagger") valid_opt=() resume_opt
  read -ra tag_args <<<"$tagger_opts"
  if [ "$tagger" = asctool ]; then
    read -ra train_args <<<"$tagger_train_opts"
    if has split; then valid_opt=(--valid "$feats/valid.h5"); fi
    if run_stage "$n" "train the tagger ($tagger_model on the tags column${tagger_train_opts:+, $tagger_train_opts})" \
        "$exp/tagger/model.keras"; then
      resume_opt=()
      if [ "$force" = true ]; then resume_opt=(--force); elif [ -f "$exp/tagger/config.json" ]; then resume_opt=(--resume); fi
      "${gpu_cmd[@]}" "$exp/log/train_tagger.log" \
        asctool train --task tagging --train "$feats/$train_set.h5" "${valid_opt[@]}" --model "$tagger_model" \
        --out-dir "$exp/tagger" --seed "$seed" "${train_args[@]}" "${resume_opt[@]}"
    fi
    run_opt+=(--run "$exp/tagger")
  fi
  for set in train evaluate; do
    tsv="$(manifest_of "$set")"
    if run_stage "$n" "tag $set with tagger $tagger${tagger_opts:+ ($tagger_opts)}" "$tags_dir/$set.h5"; then
      "${gpu_cmd[@]}" "$exp/log/tag_$set.log" \
        asctool tag --manifest "$tsv" "${run_opt[@]}" "${tag_args[@]}" --out "$tags_dir/$set.h5" --nj "$nj" \
        "${force_opt[@]}"
    fi
  done
  if [ "$tagger" = asctool ] && head -n 1 "$eval_tsv" | tr '\t' '\n' | grep -qx tags \
      && run_stage "$n" "score the tagger on the evaluation set (mAP)" "$exp/tagger/report_evaluate.json"; then
    "${cpu_cmd[@]}" "$exp/log/score_tagger.log" \
      asctool score "$tags_dir/evaluate.h5" --manifest "$eval_tsv" --json "$exp/tagger/report_evaluate.json" \
      "${force_opt[@]}"
  fi
}

stage_train() {  # validation: the split's valid set, else held-out training locations
  local i run set inputs aug_inputs=() valid_inputs=() run_inputs model_opts resume_opt train_opts note
  inputs=(--train "$inputs_dir/$train_set.h5")
  for set in "${aug_sets[@]}"; do aug_inputs+=(--train "$inputs_dir/$set.h5"); done
  if has split; then valid_inputs=(--valid "$inputs_dir/valid.h5"); fi
  if [ "$linear_probe" = true ] && run_stage "$n" "train linear_probe (logreg on clip log-mel statistics)" \
      "$exp/linear_probe/model.json"; then
    "${cpu_cmd[@]}" "$exp/log/train_linear_probe.log" \
      asctool train --train "$feats/$train_set.h5" --model logreg --out-dir "$exp/linear_probe" --force
  fi
  for i in "${!run_names[@]}"; do
    run="${run_names[$i]}"
    run_inputs=("${inputs[@]}" "${aug_inputs[@]}" "${valid_inputs[@]}")
    note=""
    if [ "${run_aug[$i]}" = false ] && [ ${#aug_sets[@]} -gt 0 ]; then   # G_augmented: false
      run_inputs=("${inputs[@]}" "${valid_inputs[@]}")
      note=", without the augmented copies"
    fi
    if [ -n "${run_epochs[$i]}" ]; then note+=", ${run_epochs[$i]} epochs"; fi
    set_train_opts "${run_epochs[$i]:-$epochs}"
    if run_stage "$n" "train $run (${run_model[$i]}, labels ${run_label[$i]}$note)" "$exp/$run/$(model_file "${run_model[$i]}")"; then
      model_opts=()
      if [ -n "${run_opts[$i]}" ]; then model_opts=(--option "${run_opts[$i]}"); fi
      if [ -n "${run_fusion[$i]}" ]; then model_opts+=(--tags "$tags_dir/train.h5" --tag-fusion "${run_fusion[$i]}"); fi
      resume_opt=()
      if [ "$force" = true ]; then
        resume_opt=(--force)
      elif [ -f "$exp/$run/config.json" ]; then
        resume_opt=(--resume)   # an interrupted run continues from its last epoch
      fi
      "${gpu_cmd[@]}" "$exp/log/train_$run.log" \
        asctool train "${run_inputs[@]}" --model "${run_model[$i]}" --labels "${run_label[$i]}" \
        --out-dir "$exp/$run" "${train_opts[@]}" "${model_opts[@]}" "${resume_opt[@]}"
    fi
  done
}

stage_quantize() {  # every model, then the size budget of all of them together
  local run calib_opts budget_opts=() size_files=()
  if [ "$size_rule" = file ]; then budget_opts=(--max-bytes "$max_bytes"); fi   # each file alone must fit too
  for run in "${run_names[@]}"; do
    size_files+=("$exp/$run/size.json")
    if run_stage "$n" "quantize $run ($quant_mode)" "$exp/$run/model.tflite"; then
      calib_opts=()
      if [ "$quant_mode" = int8 ]; then calib_opts=(--calibration "$feats/$train_set.h5"); fi
      "${cpu_cmd[@]}" "$exp/log/quantize_$run.log" \
        asctool quantize --model "$exp/$run/model.keras" --out "$exp/$run/model.tflite" \
        --mode "$quant_mode" "${calib_opts[@]}" "${budget_opts[@]}" "${force_opt[@]}"
    fi
  done
  if run_stage "$n" "size of the quantised models together (rule $size_rule, budget $max_kb KB)"; then
    asctool check-size --budget-kb "$max_kb" --size-rule "$size_rule" "${size_files[@]}"
  fi
}

stage_predict() {  # every model (Keras, and TFLite when quantised) on the evaluation set
  local i run kind sets set log_name tag_opts
  local -A set_words=([evaluate]=evaluation [valid]=validation) set_tags=([evaluate]=evaluate [valid]=train)
  sets=(evaluate)
  if has split; then sets+=(valid); fi
  if [ "$linear_probe" = true ] && run_stage "$n" "predict linear_probe on the evaluation set" \
      "$exp/linear_probe/scores_evaluate.h5"; then
    "${cpu_cmd[@]}" "$exp/log/predict_linear_probe.log" \
      asctool predict --model "$exp/linear_probe/model.json" --features "$feats/evaluate.h5" \
      --out "$exp/linear_probe/scores_evaluate.h5" "${force_opt[@]}"
  fi
  for i in "${!run_names[@]}"; do
    run="${run_names[$i]}"
    for set in "${sets[@]}"; do
      for kind in "${kinds[@]}"; do
        if [ "$set" = valid ] && [ "$kind" != "$final" ]; then continue; fi   # valid: for fitted ensembles
        log_name="predict_$run${kind:+_$kind}"
        if [ -n "$kind" ] || [ "$set" != evaluate ]; then log_name+="_$set"; fi
        if run_stage "$n" "predict $run${kind:+ ($kind)} on the ${set_words[$set]} set" \
            "$exp/$run/scores_$set${kind:+_$kind}.h5"; then
          tag_opts=()
          if [ -n "${run_fusion[$i]}" ]; then tag_opts=(--tags "$tags_dir/${set_tags[$set]}.h5"); fi
          "${gpu_cmd[@]}" "$exp/log/$log_name.log" \
            asctool predict --model "$exp/$run/$(model_file "${run_model[$i]}" "$kind")" \
            --features "$inputs_dir/$set.h5" "${tag_opts[@]}" \
            --out "$exp/$run/scores_$set${kind:+_$kind}.h5" "${force_opt[@]}"
        fi
      done
    done
  done
}

stage_combine() {  # ensembles per group, then the two-stage fusion
  local i j dir tag members fit lab_opts valid_members
  for i in "${!ens_dirs[@]}"; do
    dir="${ens_dirs[$i]}"
    members=()
    fit=()
    valid_members=()
    for j in "${!run_names[@]}"; do
      [ "${run_group[$j]}" = "${ens_group[$i]}" ] || continue
      members+=("$exp/${run_names[$j]}/scores_evaluate${final:+_$final}.h5")
      valid_members+=("$exp/${run_names[$j]}/scores_valid${final:+_$final}.h5")
      if [ -n "${ens_fit[$i]}" ]; then fit+=(--fit "$exp/${run_names[$j]}/scores_valid${final:+_$final}.h5"); fi
    done
    mapfile -t lab_opts < <(label_opts_of "$(gval "${ens_group[$i]}" labels)")
    tag="${dir/ensemble/}"
    tag="${tag#_}"
    tag="${tag%_}"
    if run_stage "$n" "${ens_methods[$i]} ensemble of the ${ens_group[$i]:+${ens_group[$i]} }models${ens_fit[$i]:+, fitted on validation scores}" \
        "$exp/$dir/scores_evaluate.h5"; then
      "${cpu_cmd[@]}" "$exp/log/ensemble_${tag:-$dir}.log" \
        asctool ensemble "${members[@]}" --method "${ens_methods[$i]}" "${fit[@]}" "${lab_opts[@]}" \
        --out "$exp/$dir/scores_evaluate.h5" "${force_opt[@]}"
    fi
    if [ "$fusion_weight" = valid ] && { [ "$dir" = "$fusion_fine" ] || [ "$dir" = "$fusion_coarse" ]; } \
        && run_stage "$n" "${ens_methods[$i]} ensemble on the validation set (for the fusion weight)" \
        "$exp/$dir/scores_valid.h5"; then
      "${cpu_cmd[@]}" "$exp/log/ensemble_${tag:-$dir}_valid.log" \
        asctool ensemble "${valid_members[@]}" --method "${ens_methods[$i]}" "${lab_opts[@]}" \
        --out "$exp/$dir/scores_valid.h5" "${force_opt[@]}"
    fi
  done
  local weight_note="${fusion_weight:+, coarse weight $fusion_weight}"
  if [ "$fusion_weight" = valid ]; then weight_note=", coarse weight chosen on the validation scores"; fi
  if [ -n "$fusion" ] && run_stage "$n" "two-stage fusion (joined by clip id$weight_note)" "$exp/$fusion/scores_evaluate.h5"; then
    "${cpu_cmd[@]}" --stdout "$exp/$fusion/fuse.json" "$exp/log/fuse.log" \
      asctool fuse --fine "$exp/$fusion_fine/scores_evaluate.h5" \
      --coarse "$exp/$fusion_coarse/scores_evaluate.h5" "${fuse_opts[@]}" --out "$exp/$fusion/scores_evaluate.h5" \
      "${force_opt[@]}"
  fi
}

stage_score() {  # JSON reports; 3-class systems against the coarse labels
  local i lab_opts
  for i in "${!sys_names[@]}"; do
    mapfile -t lab_opts < <(label_opts_of "${sys_label[$i]}")
    if run_stage "$n" "score ${sys_names[$i]}" "${sys_reports[$i]}"; then
      "${cpu_cmd[@]}" "$exp/log/score_${sys_names[$i]//\//_}.log" \
        asctool score "${sys_scores[$i]}" "${lab_opts[@]}" --json "${sys_reports[$i]}" "${force_opt[@]}"
    fi
  done
}

stage_results() {  # cheap: always rebuilt (so always --force)
  local i name opts rows=()
  if run_stage "$n" "results table $exp/RESULTS.md"; then
    opts=(--out "$exp/RESULTS.md" --title "$title, $setup evaluation set, profile $profile" --published "$published")
    if [ -n "$fusion" ]; then opts+=(--fusion-summary "$exp/$fusion/fuse.json"); fi
    if has quantize; then opts+=(--budget-kb "$max_kb" --size-rule "$size_rule"); fi
    for i in "${!sys_names[@]}"; do
      name="${sys_names[$i]/\//-}"
      rows+=("$name=${sys_reports[$i]}")
      if [[ ${sys_names[$i]} == */tflite ]]; then opts+=(--size "$name=$exp/${sys_names[$i]%/*}/size.json"); fi
    done
    asctool results "${opts[@]}" "${rows[@]}" --force >"$exp/log/results.log"
    cat "$exp/RESULTS.md"
  fi
}

stage_cam() {  # class activation maps: the first model of each of cam_groups; --force: the PNGs of a run
  # interrupted before summary.json (the stage's guard) are redrawn
  local g i cam_args=() ids first cam_list
  read -ra cam_list <<<"$cam_groups"
  for g in "${cam_list[@]}"; do
    first=""
    for i in "${!run_names[@]}"; do
      if [ "${run_group[$i]}" = "$g" ]; then first="${run_names[$i]}"; break; fi
    done
    [ -n "$first" ] || return 0
    cam_args+=(--model "$exp/$first/model.keras")
  done
  if [ "$cam_clips" -gt 0 ] && [ ${#cam_args[@]} -gt 0 ] \
      && run_stage "$n" "class activation maps of $cam_clips evaluation clip(s) in $exp/cam" "$exp/cam/summary.json"; then
    ids="$(awk -F'\t' -v n="$cam_clips" 'NR > 1 && NR <= n + 1 { printf "%s%s", (NR > 2 ? "," : ""), $1 }' "$eval_tsv")"
    "${gpu_cmd[@]}" --stdout "$exp/cam/summary.json" "$exp/log/cam.log" \
      asctool cam "${cam_args[@]}" --features "$feats/evaluate.h5" --ids "$ids" --out-dir "$exp/cam" --force
  fi
}

# ---- run ----
if [ -n "$folds" ]; then   # cross-validation: this recipe once per fold, then mean ± std
  # shellcheck source-path=SCRIPTDIR source=../utils/folds.sh
  . "$recipe_dir/utils/folds.sh"
  run_folds
  exit 0
fi
mkdir -p "$exp/log" "$data_dir"
printf '%s  %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$invocation" >>"$exp/invocation.txt"
log "$invocation"
log "system $system, profile $profile, backend $backend, data $data_dir, exp $exp"
trap 'on_error $LINENO' ERR

n=0
for name in "${stage_list[@]}"; do
  "stage_$name"
  n=$((n + 1))
done

log "Done in $(elapsed "$start_time")."
