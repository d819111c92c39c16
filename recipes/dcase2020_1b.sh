#!/usr/bin/env bash
# DCASE 2020 Task 1b: two small 3-class models, quantised, under 500 KB together (Hu et al.).
#
#   bash recipes/dcase2020_1b.sh --data-root /path/to/TAU-urban-acoustic-scenes-2020-3class-development
#   bash recipes/dcase2020_1b.sh --work-dir demo1b     # synthesized 48 kHz stereo demo data
#
# Stages (--stage N --stop-stage M; a stage whose outputs exist is skipped unless
# --force, so rerunning after a failure resumes where it failed):
#   0 data       synthesize 48 kHz stereo device-a demo data (only without --data-root)
#   1 prepare    manifests data/SETUP_{train,evaluate}.tsv
#   2 split      training manifest -> train_sub + valid, by recording location
#   3 featurize  preset 1b (128 x 461 x 6), --nj shards per set, combined
#   4 train      mobnet and small_fcnn, 3 classes (batch augmentation incl. channel swap)
#   5 quantize   TensorFlow Lite dynamic-range quantisation; the pair must fit --max-kb
#                (by default counted as parameters x 8 bits, the DCASE 2020 rule)
#   6 predict    Keras and TFLite models on the evaluation set, TFLite on validation
#   7 combine    mean ensemble and logistic regression fitted on the validation scores
#   8 score      every model and ensemble (JSON reports)
#   9 results    exp/RESULTS.md with sizes, printed
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
invocation="$(printf '%q ' "$0" "$@")"
start_time=$SECONDS

# ---- options (every one settable as --foo-bar VALUE) ----
stage=0               # first stage to run
stop_stage=100        # last stage to run
nj=4                  # parallel jobs (featurize shards)
backend=""            # job backend: local or slurm (default: $ASCTOOL_BACKEND, else local)
data_root=""          # TAU 2020 3Class development root; empty: synthesize demo data
profile=""            # paper or demo (default: paper with --data-root, demo without)
work_dir=exp/dcase2020_1b  # holds db/, data/ and exp/ unless --data-dir / --exp say otherwise
data_dir=""           # manifests and features (default: WORK_DIR/data)
exp=""                # models, scores, reports, logs (default: WORK_DIR/exp)
setup=fold1           # evaluation setup (prefix of the split files)
labels=""             # train labels: scene (3Class data) or coarse (10-scene data; default without --data-root)
models="mobnet small_fcnn"  # the two small models
quant_mode=dynamic    # quantisation mode (dynamic as in the paper; float16; int8 calibrated)
max_kb=500            # size budget of all quantised models together, in KB (1 KB = 1024 bytes)
size_rule=dcase       # dcase: parameters x bits of the mode (the challenge rule); file: .tflite file sizes
clips_per_class=""    # synth: training clips per scene (default: the profile's)
epochs=""             # training epochs (default: the profile's)
width=""              # model width multiplier (default: the profile's)
batch_size=""         # training batch size (default: the trainer's profile; demo profile: 8)
crop=""               # training random-crop length in frames (default: the trainer's, 400 for 1a; demo profile: 128)
valid_fraction=0.1    # fraction of each scene's training locations held out for validation
seed=0                # random seed of every stage
force=false           # rerun stages whose outputs exist

help_message="Usage: $0 [options]
DCASE 2020 Task 1b (Hu et al.): Mobnet + small-FCNN, quantised, under 500 KB together.
Options (defaults in brackets):
  --stage N              first stage [$stage]
  --stop-stage M         last stage [$stop_stage]
  --nj N                 parallel jobs [$nj]
  --backend NAME         local or slurm (see recipes/cmd.sh) [\${ASCTOOL_BACKEND:-local}]
  --data-root DIR        TAU 2020 3Class development root (empty: synthesized demo data)
  --profile NAME         paper or demo [paper with --data-root, else demo]
  --work-dir DIR         folder for data/ and exp/ [$work_dir]
  --data-dir DIR         data folder [WORK_DIR/data]
  --exp DIR              experiment folder [WORK_DIR/exp]
  --setup NAME           evaluation setup [$setup]
  --labels NAME          scene or coarse [scene with --data-root, else coarse]
  --models LIST          models to train and quantise [$models]
  --quant-mode MODE      dynamic, float16 or int8 [$quant_mode]
  --max-kb N             budget of the quantised models together, KB of 1024 bytes [$max_kb]
  --size-rule RULE       dcase (parameters x bits) or file (.tflite sizes) [$size_rule]
  --clips-per-class N    synthesized clips per scene (demo data) [profile's]
  --epochs N             training epochs [profile's]
  --width X              model width multiplier [profile's]
  --batch-size N         training batch size [trainer's; demo 8]
  --crop N               training random-crop length in frames [trainer's; demo 128]
  --valid-fraction X     training locations held out for validation [$valid_fraction]
  --seed N               random seed [$seed]
  --force                rerun stages whose outputs exist
  --config FILE          read option values from FILE (lines like nj=8)
Stages: 0 data, 1 prepare, 2 split, 3 featurize, 4 train, 5 quantize, 6 predict,
7 combine, 8 score, 9 results."

# shellcheck source=utils/parse_options.sh
. "$recipe_dir/utils/parse_options.sh"
if [ $# -gt 0 ]; then
  echo "$0: unexpected argument '$1' (options only; see --help)" >&2
  exit 2
fi
# shellcheck source=cmd.sh
. "$recipe_dir/cmd.sh"
# shellcheck source=utils/common.sh
. "$recipe_dir/utils/common.sh"

if [ -z "$profile" ]; then
  if [ -n "$data_root" ]; then profile=paper; else profile=demo; fi
fi
case "$profile" in
  paper) : "${clips_per_class:=12}" ;;
  demo)
    : "${clips_per_class:=18}"   # device a only: 180 training clips
    : "${batch_size:=8}"    # twice the SGD steps of batch 16 for about the same time: learns more in 6 epochs
    : "${crop:=128}"        # 3 s crops for speed; evaluation uses all 461 frames
    ;;
  *) die_usage "--profile must be paper or demo, not '$profile'" ;;
esac
if [ -z "$labels" ]; then
  if [ -n "$data_root" ]; then labels=scene; else labels=coarse; fi
fi
case "$labels" in scene|coarse) ;; *) die_usage "--labels must be scene or coarse, not '$labels'" ;; esac
case "$quant_mode" in dynamic|float16|int8) ;; *) die_usage "--quant-mode must be dynamic, float16 or int8" ;; esac
case "$size_rule" in dcase|file) ;; *) die_usage "--size-rule must be dcase or file, not '$size_rule'" ;; esac
: "${data_dir:=$work_dir/data}"
: "${exp:=$work_dir/exp}"
check_int nj "$nj" 1
check_int stage "$stage" 0
check_int stop_stage "$stop_stage" 0
check_int max_kb "$max_kb" 1
max_bytes=$((max_kb * 1024))

train_opts=(--profile "$profile" --seed "$seed" --labels "$labels")
[ -n "$epochs" ] && train_opts+=(--epochs "$epochs")
[ -n "$width" ] && train_opts+=(--width "$width")
[ -n "$crop" ] && train_opts+=(--crop "$crop")
[ -n "$batch_size" ] && train_opts+=(--batch-size "$batch_size")
label_opts=()
[ "$labels" = coarse ] && label_opts=(--labels coarse)
force_opt=()
[ "$force" = true ] && force_opt=(--force)

mkdir -p "$exp/log" "$data_dir"
printf '%s  %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$invocation" >>"$exp/invocation.txt"
log "$invocation"
log "profile $profile, labels $labels, backend $backend, data $data_dir, exp $exp"
trap 'on_error $LINENO' ERR

# ---- stage 0: synthesize 48 kHz stereo device-a demo data ----
if [ -z "$data_root" ]; then
  data_root="$work_dir/db"
  if run_stage 0 "synthesize 48 kHz stereo demo data in $data_root" "$data_root/meta.csv"; then
    "${cpu_cmd[@]}" "$exp/log/synth.log" \
      asctool synth --out-dir "$data_root" --clips-per-class "$clips_per_class" --sr 48000 --channels 2 \
      --devices a --nj "$nj" --seed "$seed" "${force_opt[@]}"
  fi
fi

# ---- stage 1: manifests ----
train_tsv="$data_dir/${setup}_train.tsv"
eval_tsv="$data_dir/${setup}_evaluate.tsv"
if run_stage 1 "prepare manifests from $data_root" "$train_tsv" "$eval_tsv"; then
  "${cpu_cmd[@]}" "$exp/log/prepare.log" \
    asctool prepare --dataset-root "$data_root" --out-dir "$data_dir" --setup "$setup" "${force_opt[@]}"
fi

# ---- stage 2: validation locations from the training side ----
if run_stage 2 "hold out ${valid_fraction} of the training locations for validation" \
    "$data_dir/train_sub.tsv" "$data_dir/valid.tsv"; then
  "${cpu_cmd[@]}" "$exp/log/split.log" \
    python3 "$recipe_dir/utils/split_manifest.py" "$train_tsv" --train "$data_dir/train_sub.tsv" \
    --valid "$data_dir/valid.tsv" --fraction "$valid_fraction" --seed "$seed"
fi

# ---- stage 3: features (preset 1b), sharded then combined ----
feats="$data_dir/feats"
if in_range 3; then
  for set in train_sub valid evaluate; do
    case "$set" in
      evaluate) manifest="$eval_tsv" ;;
      *) manifest="$data_dir/$set.tsv" ;;
    esac
    if run_stage 3 "featurize $set ($nj shards, preset 1b)" "$feats/$set.h5"; then
      "${cpu_cmd[@]}" JOB=1:"$nj" "$exp/log/featurize_$set.JOB.log" \
        asctool featurize --manifest "$manifest" --out "$feats/$set/shard.JOB.h5" \
        --preset 1b --shard "JOB/$nj" "${force_opt[@]}"
      shards=()
      for ((j = 1; j <= nj; j++)); do shards+=(--combine "$feats/$set/shard.$j.h5"); done
      "${cpu_cmd[@]}" "$exp/log/featurize_$set.combine.log" \
        asctool featurize --out "$feats/$set.h5" "${shards[@]}" "${force_opt[@]}"
    fi
  done
fi

# ---- stage 4: training ----
if in_range 4; then
  for model in $models; do
    if run_stage 4 "train $model ($labels labels)" "$exp/$model/model.keras"; then
      resume_opt=()
      if [ "$force" = true ]; then
        resume_opt=(--force)
      elif [ -f "$exp/$model/config.json" ]; then
        resume_opt=(--resume)
      fi
      "${gpu_cmd[@]}" "$exp/log/train_$model.log" \
        asctool train --train "$feats/train_sub.h5" --valid "$feats/valid.h5" --model "$model" \
        --out-dir "$exp/$model" "${train_opts[@]}" "${resume_opt[@]}"
    fi
  done
fi

# ---- stage 5: quantisation and the size budget of the pair ----
if in_range 5; then
  budget_opts=()
  [ "$size_rule" = file ] && budget_opts=(--max-bytes "$max_bytes")   # each file alone must fit too
  size_files=()
  for model in $models; do
    size_files+=("$exp/$model/size.json")
    if run_stage 5 "quantize $model ($quant_mode)" "$exp/$model/model.tflite"; then
      calib_opts=()
      [ "$quant_mode" = int8 ] && calib_opts=(--calibration "$feats/train_sub.h5")
      "${cpu_cmd[@]}" "$exp/log/quantize_$model.log" \
        asctool quantize --model "$exp/$model/model.keras" --out "$exp/$model/model.tflite" \
        --mode "$quant_mode" "${calib_opts[@]}" "${budget_opts[@]}" "${force_opt[@]}"
    fi
  done
  if run_stage 5 "size of the quantised models together (rule $size_rule, budget $max_kb KB)"; then
    python3 "$recipe_dir/utils/check_size.py" --budget-kb "$max_kb" --rule "$size_rule" "${size_files[@]}"
  fi
fi

# ---- stage 6: predictions ----
if in_range 6; then
  for model in $models; do
    for kind in keras tflite; do
      if run_stage 6 "predict $model ($kind) on the evaluation set" "$exp/$model/scores_evaluate_$kind.h5"; then
        "${gpu_cmd[@]}" "$exp/log/predict_${model}_${kind}_evaluate.log" \
          asctool predict --model "$exp/$model/model.$kind" --features "$feats/evaluate.h5" \
          --out "$exp/$model/scores_evaluate_$kind.h5"
      fi
    done
    if run_stage 6 "predict $model (tflite) on the validation set" "$exp/$model/scores_valid_tflite.h5"; then
      "${gpu_cmd[@]}" "$exp/log/predict_${model}_tflite_valid.log" \
        asctool predict --model "$exp/$model/model.tflite" --features "$feats/valid.h5" \
        --out "$exp/$model/scores_valid_tflite.h5"
    fi
  done
fi

# ---- stage 7: ensembles of the quantised models ----
members=()
fit=()
for model in $models; do
  members+=("$exp/$model/scores_evaluate_tflite.h5")
  fit+=(--fit "$exp/$model/scores_valid_tflite.h5")
done
if in_range 7; then
  if run_stage 7 "mean ensemble" "$exp/ensemble_mean/scores_evaluate.h5"; then
    "${cpu_cmd[@]}" "$exp/log/ensemble_mean.log" \
      asctool ensemble "${members[@]}" --method mean "${label_opts[@]}" --out "$exp/ensemble_mean/scores_evaluate.h5"
  fi
  if run_stage 7 "logistic-regression ensemble fitted on validation scores" "$exp/ensemble_logreg/scores_evaluate.h5"; then
    "${cpu_cmd[@]}" "$exp/log/ensemble_logreg.log" \
      asctool ensemble "${members[@]}" --method logreg "${fit[@]}" "${label_opts[@]}" \
      --out "$exp/ensemble_logreg/scores_evaluate.h5"
  fi
fi

# ---- stage 8: scores ----
systems=()
for model in $models; do systems+=("$model/keras" "$model/tflite"); done
systems+=(ensemble_mean ensemble_logreg)
report_of() {  # report_of SYSTEM -> the JSON report path
  case "$1" in
    */*) echo "$exp/${1%/*}/report_evaluate_${1#*/}.json" ;;
    *) echo "$exp/$1/report_evaluate.json" ;;
  esac
}
scores_of() {
  case "$1" in
    */*) echo "$exp/${1%/*}/scores_evaluate_${1#*/}.h5" ;;
    *) echo "$exp/$1/scores_evaluate.h5" ;;
  esac
}
if in_range 8; then
  for system in "${systems[@]}"; do
    report="$(report_of "$system")"
    if run_stage 8 "score $system" "$report"; then
      "${cpu_cmd[@]}" "$exp/log/score_${system//\//_}.log" \
        asctool score "$(scores_of "$system")" "${label_opts[@]}" --json "$report"
    fi
  done
fi

# ---- stage 9: results table with sizes ----
if run_stage 9 "results table $exp/RESULTS.md"; then   # cheap: always rebuilt
  rows=()
  sizes=()
  for system in "${systems[@]}"; do
    rows+=("${system/\//-}=$(report_of "$system")")
    [[ $system == */tflite ]] && sizes+=("${system/\//-}=$exp/${system%/*}/size.json")
  done
  python3 "$recipe_dir/utils/results_table.py" --task 1b --out "$exp/RESULTS.md" \
    --title "DCASE 2020 Task 1b, $setup evaluation set, profile $profile" \
    --budget-kb "$max_kb" --size-rule "$size_rule" "${rows[@]}" --sizes "${sizes[@]}"
  cat "$exp/RESULTS.md"
fi

log "Done in $(elapsed "$start_time")."
