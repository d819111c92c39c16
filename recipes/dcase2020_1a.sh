#!/usr/bin/env bash
# DCASE 2020 Task 1a: the two-stage system of Hu et al. (REFERENCE.md), stage by stage.
#
#   bash recipes/dcase2020_1a.sh --data-root /path/to/TAU-urban-acoustic-scenes-2020-mobile-development
#   bash recipes/dcase2020_1a.sh --work-dir demo            # synthesized demo data, --profile demo
#
# Stages (--stage N --stop-stage M select a range; a stage whose outputs exist is
# skipped unless --force, so rerunning after a failure resumes where it failed):
#   0 data       synthesize the demo dataset (only without --data-root)
#   1 prepare    manifests data/SETUP_{train,evaluate,test}.tsv
#   2 augment    one augmented copy of the training set per method (leakage-guarded)
#   3 featurize  log-mel + deltas, --nj shards per set, combined into data/feats/SET.h5
#   4 train      10-class resnet, fcnn, fsfcnn; 3-class resnet, fcnn
#   5 predict    every model on the evaluation set
#   6 combine    mean ensemble per stage, two-stage fusion
#   7 score      every model, ensemble and the fusion (JSON reports)
#   8 results    exp/RESULTS.md (table of REFERENCE.md section 6), printed
#   9 cam        class activation maps of a few evaluation clips (3-class and 10-class model)
set -euo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
invocation="$(printf '%q ' "$0" "$@")"
start_time=$SECONDS

# ---- options (every one settable as --foo-bar VALUE) ----
stage=0               # first stage to run
stop_stage=100        # last stage to run
nj=4                  # parallel jobs for sharded stages (augment workers, featurize shards)
backend=""            # job backend: local or slurm (default: $ASCTOOL_BACKEND, else local)
data_root=""          # TAU 2020 Mobile development root; empty: synthesize the demo data
profile=""            # paper or demo (default: paper with --data-root, demo without)
work_dir=exp/dcase2020_1a  # holds db/, data/ and exp/ unless --data-dir / --exp say otherwise
data_dir=""           # manifests, augmented audio and features (default: WORK_DIR/data)
exp=""                # models, scores, reports, logs (default: WORK_DIR/exp)
setup=fold1           # evaluation setup (prefix of the split files)
augmentations=""      # offline augmentations (default: the profile's; "none" for none)
simulate_rooms=""     # rooms simulated for reverb / reverb-drc (default: the profile's)
rir_dir=""            # measured impulse responses for reverb / reverb-drc (instead of simulating)
augment_devices=""    # source devices of the augmentations, comma-separated (default: the profile's; "all": the methods' own defaults)
clips_per_class=""    # synth: device-a training clips per scene (default: the profile's)
fine_models="resnet fcnn fsfcnn"   # 10-class models (ensembled by the mean)
coarse_models="resnet fcnn"        # 3-class models (ensembled by the mean)
coarse_resnet_option="base_filters=24"  # model option of the 3-class resnet
epochs=""             # training epochs (default: the profile's)
width=""              # model width multiplier (default: the profile's)
batch_size=""         # training batch size (default: the trainer's profile; demo profile: 8)
crop=""               # training random-crop length in frames (default: the trainer's, 400 for 1a; demo profile: 128)
valid_split=0.1       # fraction of training locations held out for validation
cam_clips=2           # stage 9: class activation maps of the first N evaluation clips (0: none)
seed=0                # random seed of every stage
force=false           # rerun stages whose outputs exist

help_message="Usage: $0 [options]
DCASE 2020 Task 1a two-stage system (Hu et al.) from data preparation to RESULTS.md.
Options (defaults in brackets):
  --stage N              first stage [$stage]
  --stop-stage M         last stage [$stop_stage]
  --nj N                 parallel jobs [$nj]
  --backend NAME         local or slurm (see recipes/cmd.sh) [\${ASCTOOL_BACKEND:-local}]
  --data-root DIR        TAU 2020 Mobile development root (empty: synthesized demo data)
  --profile NAME         paper or demo [paper with --data-root, else demo]
  --work-dir DIR         folder for data/ and exp/ [$work_dir]
  --data-dir DIR         data folder [WORK_DIR/data]
  --exp DIR              experiment folder [WORK_DIR/exp]
  --setup NAME           evaluation setup [$setup]
  --augmentations LIST   quoted list of augment methods, or none [profile's]
  --simulate-rooms N     simulated rooms for reverb methods [profile's]
  --rir-dir DIR          measured impulse responses for reverb methods
  --augment-devices LIST source devices to augment, e.g. a or a,b,c; all: each method's default [profile's]
  --clips-per-class N    synthesized clips per scene (demo data) [profile's]
  --fine-models LIST     10-class models [$fine_models]
  --coarse-models LIST   3-class models [$coarse_models]
  --coarse-resnet-option KEY=VALUE  option of the 3-class resnet [$coarse_resnet_option]
  --epochs N             training epochs [profile's]
  --width X              model width multiplier [profile's]
  --batch-size N         training batch size [trainer's; demo 8]
  --crop N               training random-crop length in frames [trainer's; demo 128]
  --valid-split X        training locations held out for validation [$valid_split]
  --cam-clips N          class activation maps of the first N evaluation clips [$cam_clips]
  --seed N               random seed [$seed]
  --force                rerun stages whose outputs exist
  --config FILE          read option values from FILE (lines like nj=8)
Stages: 0 data, 1 prepare, 2 augment, 3 featurize, 4 train, 5 predict, 6 combine,
7 score, 8 results, 9 cam."

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

# ---- defaults that depend on the profile ----
if [ -z "$profile" ]; then
  if [ -n "$data_root" ]; then profile=paper; else profile=demo; fi
fi
case "$profile" in
  paper)
    : "${augmentations:=pitch speed noise mix spectrum-correction reverb reverb-drc}"
    : "${simulate_rooms:=20}"
    : "${augment_devices:=all}"
    : "${clips_per_class:=12}"
    ;;
  demo)
    : "${augmentations:=noise}"
    : "${simulate_rooms:=2}"
    : "${augment_devices:=a}"
    : "${batch_size:=8}"    # twice the SGD steps of batch 16 for about the same time: learns more in 6 epochs
    : "${crop:=128}"        # 3 s crops: a third of the training cost; evaluation uses all 423 frames
    : "${clips_per_class:=6}"
    ;;
  *) die_usage "--profile must be paper or demo, not '$profile'" ;;
esac
[ "$augmentations" = none ] && augmentations=""
: "${data_dir:=$work_dir/data}"
: "${exp:=$work_dir/exp}"
check_int nj "$nj" 1
check_int stage "$stage" 0
check_int stop_stage "$stop_stage" 0
check_int cam_clips "$cam_clips" 0

train_opts=(--profile "$profile" --seed "$seed" --valid-split "$valid_split")
[ -n "$epochs" ] && train_opts+=(--epochs "$epochs")
[ -n "$width" ] && train_opts+=(--width "$width")
[ -n "$crop" ] && train_opts+=(--crop "$crop")
[ -n "$batch_size" ] && train_opts+=(--batch-size "$batch_size")
force_opt=()
[ "$force" = true ] && force_opt=(--force)

mkdir -p "$exp/log" "$data_dir"
printf '%s  %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$invocation" >>"$exp/invocation.txt"
log "$invocation"
log "profile $profile, backend $backend, data $data_dir, exp $exp"
trap 'on_error $LINENO' ERR

# ---- stage 0: synthesize the demo data when no dataset is given ----
if [ -z "$data_root" ]; then
  data_root="$work_dir/db"
  if run_stage 0 "synthesize the demo dataset in $data_root" "$data_root/meta.csv"; then
    "${cpu_cmd[@]}" "$exp/log/synth.log" \
      asctool synth --out-dir "$data_root" --clips-per-class "$clips_per_class" --nj "$nj" --seed "$seed" "${force_opt[@]}"
  fi
fi

# ---- stage 1: manifests ----
train_tsv="$data_dir/${setup}_train.tsv"
eval_tsv="$data_dir/${setup}_evaluate.tsv"
if run_stage 1 "prepare manifests from $data_root" "$train_tsv" "$eval_tsv"; then
  "${cpu_cmd[@]}" "$exp/log/prepare.log" \
    asctool prepare --dataset-root "$data_root" --out-dir "$data_dir" --setup "$setup" "${force_opt[@]}"
fi

# ---- stage 2: offline augmentation (sources checked against the evaluation locations) ----
aug_sets=()
for method in $augmentations; do aug_sets+=("aug_$method"); done
if in_range 2; then
  for method in $augmentations; do
    out_tsv="$data_dir/aug_$method.tsv"
    if run_stage 2 "augment $method" "$out_tsv"; then
      method_opts=()
      [ "$augment_devices" != all ] && method_opts+=(--devices "$augment_devices")
      case "$method" in
        reverb|reverb-drc)
          if [ -n "$rir_dir" ]; then method_opts+=(--rir-dir "$rir_dir"); else method_opts+=(--simulate-rooms "$simulate_rooms"); fi
          ;;
      esac
      "${cpu_cmd[@]}" "$exp/log/augment_$method.log" \
        asctool augment "$method" --manifest "$train_tsv" --out-dir "$data_dir/aug/$method" \
        --out-manifest "$out_tsv" --exclude-locations "$eval_tsv" "${method_opts[@]}" \
        --nj "$nj" --seed "$seed"
    fi
  done
fi

# ---- stage 3: features, --nj shards per set, then combined (virtual dataset) ----
feats="$data_dir/feats"
if in_range 3; then
  for set in train evaluate "${aug_sets[@]}"; do
    case "$set" in
      train) manifest="$train_tsv" ;;
      evaluate) manifest="$eval_tsv" ;;
      *) manifest="$data_dir/$set.tsv" ;;
    esac
    if run_stage 3 "featurize $set ($nj shards)" "$feats/$set.h5"; then
      "${cpu_cmd[@]}" JOB=1:"$nj" "$exp/log/featurize_$set.JOB.log" \
        asctool featurize --manifest "$manifest" --out "$feats/$set/shard.JOB.h5" \
        --preset 1a --shard "JOB/$nj" "${force_opt[@]}"
      shards=()
      for ((j = 1; j <= nj; j++)); do shards+=(--combine "$feats/$set/shard.$j.h5"); done
      "${cpu_cmd[@]}" "$exp/log/featurize_$set.combine.log" \
        asctool featurize --out "$feats/$set.h5" "${shards[@]}" "${force_opt[@]}"
    fi
  done
  log "Features of the training set:"
  asctool inspect "$feats/train.h5"
fi

# ---- stage 4: training (validation: held-out training locations) ----
runs=()
for model in $fine_models; do runs+=("fine_$model"); done
for model in $coarse_models; do runs+=("coarse_$model"); done
train_inputs=(--train "$feats/train.h5")
for set in "${aug_sets[@]}"; do train_inputs+=(--train "$feats/$set.h5"); done
if in_range 4; then
  for run in "${runs[@]}"; do
    model="${run#*_}"
    labels=scene
    model_opts=()
    if [[ $run == coarse_* ]]; then
      labels=coarse
      if [ "$model" = resnet ] && [ -n "$coarse_resnet_option" ]; then
        model_opts=(--option "$coarse_resnet_option")
      fi
    fi
    if run_stage 4 "train $run ($model, labels $labels)" "$exp/$run/model.keras"; then
      resume_opt=()
      if [ "$force" = true ]; then
        resume_opt=(--force)
      elif [ -f "$exp/$run/config.json" ]; then
        resume_opt=(--resume)   # an interrupted run continues from its last epoch
      fi
      "${gpu_cmd[@]}" "$exp/log/train_$run.log" \
        asctool train "${train_inputs[@]}" --model "$model" --labels "$labels" \
        --out-dir "$exp/$run" "${train_opts[@]}" "${model_opts[@]}" "${resume_opt[@]}"
    fi
  done
fi

# ---- stage 5: prediction on the evaluation set ----
if in_range 5; then
  for run in "${runs[@]}"; do
    if run_stage 5 "predict $run on the evaluation set" "$exp/$run/scores_evaluate.h5"; then
      "${gpu_cmd[@]}" "$exp/log/predict_$run.log" \
        asctool predict --model "$exp/$run/model.keras" --features "$feats/evaluate.h5" \
        --out "$exp/$run/scores_evaluate.h5"
    fi
  done
fi

# ---- stage 6: ensembles (mean) and two-stage fusion ----
fine_scores=()
coarse_scores=()
for run in "${runs[@]}"; do
  if [[ $run == fine_* ]]; then fine_scores+=("$exp/$run/scores_evaluate.h5"); else coarse_scores+=("$exp/$run/scores_evaluate.h5"); fi
done
if in_range 6; then
  if run_stage 6 "mean ensemble of the 10-class models" "$exp/fine_ensemble/scores_evaluate.h5"; then
    "${cpu_cmd[@]}" "$exp/log/ensemble_fine.log" \
      asctool ensemble "${fine_scores[@]}" --method mean --out "$exp/fine_ensemble/scores_evaluate.h5"
  fi
  if run_stage 6 "mean ensemble of the 3-class models" "$exp/coarse_ensemble/scores_evaluate.h5"; then
    "${cpu_cmd[@]}" "$exp/log/ensemble_coarse.log" \
      asctool ensemble "${coarse_scores[@]}" --method mean --labels coarse --out "$exp/coarse_ensemble/scores_evaluate.h5"
  fi
  if run_stage 6 "two-stage fusion (joined by clip id)" "$exp/two_stage/scores_evaluate.h5"; then
    "${cpu_cmd[@]}" --stdout "$exp/two_stage/fuse.json" "$exp/log/fuse.log" \
      asctool fuse --fine "$exp/fine_ensemble/scores_evaluate.h5" \
      --coarse "$exp/coarse_ensemble/scores_evaluate.h5" --out "$exp/two_stage/scores_evaluate.h5"
  fi
fi

# ---- stage 7: scores ----
systems=("${runs[@]}" fine_ensemble coarse_ensemble two_stage)
if in_range 7; then
  for system in "${systems[@]}"; do
    label_opts=()
    [[ $system == coarse_* ]] && label_opts=(--labels coarse)
    if run_stage 7 "score $system" "$exp/$system/report_evaluate.json"; then
      "${cpu_cmd[@]}" "$exp/log/score_$system.log" \
        asctool score "$exp/$system/scores_evaluate.h5" "${label_opts[@]}" \
        --json "$exp/$system/report_evaluate.json"
    fi
  done
fi

# ---- stage 8: results table ----
if run_stage 8 "results table $exp/RESULTS.md"; then   # cheap: always rebuilt
  rows=()
  for system in "${systems[@]}"; do rows+=("$system=$exp/$system/report_evaluate.json"); done
  python3 "$recipe_dir/utils/results_table.py" --out "$exp/RESULTS.md" \
    --title "DCASE 2020 Task 1a, $setup evaluation set, profile $profile" \
    --fusion-summary "$exp/two_stage/fuse.json" "${rows[@]}"
  cat "$exp/RESULTS.md"
fi

# ---- stage 9: class activation maps (first coarse and first fine model) ----
fine_first="${fine_models%% *}"
coarse_first="${coarse_models%% *}"
if [ "$cam_clips" -gt 0 ] && [ -n "$fine_first" ] && [ -n "$coarse_first" ] \
    && run_stage 9 "class activation maps of $cam_clips evaluation clip(s) in $exp/cam" "$exp/cam/summary.json"; then
  cam_ids="$(awk -F'\t' -v n="$cam_clips" 'NR > 1 && NR <= n + 1 { printf "%s%s", (NR > 2 ? "," : ""), $1 }' "$eval_tsv")"
  "${gpu_cmd[@]}" --stdout "$exp/cam/summary.json" "$exp/log/cam.log" \
    asctool cam --model "$exp/coarse_$coarse_first/model.keras" --model "$exp/fine_$fine_first/model.keras" \
    --features "$feats/evaluate.h5" --ids "$cam_ids" --out-dir "$exp/cam"
fi

log "Done in $(elapsed "$start_time")."
