#!/usr/bin/env bash
# DCASE 2020 Task 1a with unlabelled target-device clips (docs/adversarial.md): the plain model,
# device-adversarial training (time and whole), tri-training and both, side by side in RESULTS.md.
#
#   bash recipes/TEMPLATE/unlabelled.sh --data-root DEV_ROOT --unlabelled-root EVAL_ROOT
#   bash recipes/TEMPLATE/unlabelled.sh --work-dir demo_unl      # synthesized demo data
#
# A standalone script next to the template (not yet a section of asc.sh), so it is not
# one of the thin recipes/SYSTEM.sh scripts.
#
# --unlabelled-root is a data set root with only a test list or only audio (asctool prepare
# --layout eval). Without roots, stage 0 synthesizes the demo set (seed 0) and, as the
# unlabelled set, a second one (seed --unlabelled-seed) whose test list (all devices,
# s4-s6 included) is prepared without labels: other rooms and sources than the evaluation set.
#
# Stages: 0 synth, 1 prepare, 2 featurize, 3 train (phase 1, pseudo-label, phase 2),
# 4 predict + score, 5 results (exp/RESULTS.md, by device group).
set -Eeuo pipefail

recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stage=0; stop_stage=100; force=false; nj=2
data_root=""; unlabelled_root=""; unlabelled_seed=1; work_dir=exp/unlabelled
model=fcnn; profile=demo; epochs=12; batch_size=8; crop=128; seed=0
adversarial="time whole"; domain=device; grl_weight=1.0; orthogonality=1.0; threshold=0.5
help_message="Usage: $0 [options]
  --data-root DIR          TAU 2020 Mobile development root (empty: synthesized demo data)
  --unlabelled-root DIR    root of the unlabelled clips (a test list or audio only)
  --unlabelled-seed N      seed of the synthesized unlabelled set [1]
  --work-dir DIR           folder for db/, data/ and exp/ [$work_dir]
  --model NAME --profile NAME --epochs N --batch-size N --crop N --seed N   asctool train options
  --adversarial LIST       quoted variants of the domain classifier [time whole]
  --domain NAME --grl-weight A --orthogonality L --threshold T   see docs/adversarial.md
  --stage N --stop-stage M --nj N --force"
parse_options_names="stage stop_stage force nj data_root unlabelled_root unlabelled_seed work_dir model profile
  epochs batch_size crop seed adversarial domain grl_weight orthogonality threshold"
# shellcheck source=utils/parse_options.sh
. "$recipe_dir/utils/parse_options.sh"
# shellcheck source=utils/common.sh
. "$recipe_dir/utils/common.sh"
trap 'on_error $LINENO' ERR
start_time=$SECONDS

db="$work_dir/db"; data="$work_dir/data"; exp="$work_dir/exp"; feats="$data/feats"
mkdir -p "$data" "$exp" "$feats"
if [ -z "$data_root" ] && [ -z "$unlabelled_root" ]; then
  if run_stage 0 "synthesize the demo data and an unlabelled set" "$db/dev" "$db/unlabelled"; then
    asctool synth --out-dir "$db/dev" --seed 0 --nj "$nj" --force
    asctool synth --out-dir "$db/unlabelled" --seed "$unlabelled_seed" --nj "$nj" --force
  fi
  data_root="$db/dev"; unlabelled_root="$db/unlabelled"
elif [ -z "$data_root" ] || [ -z "$unlabelled_root" ]; then
  die_usage "give both --data-root and --unlabelled-root, or neither (demo data)"
fi
if run_stage 1 "prepare" "$data/fold1_train.tsv" "$data/unlabelled/fold1_test.tsv"; then
  asctool prepare --dataset-root "$data_root" --out-dir "$data" --force
  asctool prepare --dataset-root "$unlabelled_root" --out-dir "$data/unlabelled" --layout eval --force
fi
if run_stage 2 "featurize" "$feats/train.h5" "$feats/evaluate.h5" "$feats/unlabelled.h5"; then
  asctool featurize --manifest "$data/fold1_train.tsv" --out "$feats/train.h5" --nj "$nj" --force
  asctool featurize --manifest "$data/fold1_evaluate.tsv" --out "$feats/evaluate.h5" --nj "$nj" --force
  asctool featurize --manifest "$data/unlabelled/fold1_test.tsv" --out "$feats/unlabelled.h5" --nj "$nj" --force
fi
common=(--model "$model" --profile "$profile" --epochs "$epochs" --batch-size "$batch_size" --crop "$crop"
        --seed "$seed")
unl=(--unlabelled "$feats/unlabelled.h5" --domain "$domain" --grl-weight "$grl_weight" --grl-ramp)
systems=(plain)
for a in $adversarial; do systems+=("adversarial_$a"); done
systems+=(tri_training tri_training_adversarial)
first_adv="${adversarial%% *}"
train() {  # train NAME ARGS...: asctool train into exp/NAME unless it finished
  local name=$1; shift
  if [ "$force" = true ] || [ ! -s "$exp/$name/model.keras" ]; then
    asctool train "${common[@]}" --out-dir "$exp/$name" --force "$@"
  fi
}
if run_stage 3 "train: ${systems[*]}"; then
  train plain --train "$feats/train.h5"
  for a in $adversarial; do train "adversarial_$a" --train "$feats/train.h5" "${unl[@]}" --adversarial "$a"; done
  for name in tri_training tri_training_adversarial; do
    extra=(); [ $name = tri_training_adversarial ] && extra=("${unl[@]}" --adversarial "${first_adv:-time}")
    train "${name}_phase1" --train "$feats/train.h5" "${extra[@]}" --tri-training --orthogonality "$orthogonality"
    pseudo=()   # no clip agreed on (weak labellers): phase 2 trains on the labelled clips alone
    if asctool pseudo-label --model "$exp/${name}_phase1" --features "$feats/unlabelled.h5" \
         --threshold "$threshold" --out "$exp/${name}_pseudo.h5" --force; then
      pseudo=(--train "$exp/${name}_pseudo.h5")
    else
      log "$name: no pseudo-labels (the line above says why); phase 2 trains without them"
    fi
    train "$name" --train "$feats/train.h5" "${pseudo[@]}" "${extra[@]}"
  done
fi
if run_stage 4 "predict and score"; then
  for name in "${systems[@]}"; do
    asctool predict --model "$exp/$name/model.keras" --features "$feats/evaluate.h5" --out "$exp/$name/evaluate.h5" --force
    asctool score "$exp/$name/evaluate.h5" --json "$exp/$name/score.json" --force > /dev/null
  done
fi
if run_stage 5 "results"; then
  rows=(); for name in "${systems[@]}"; do rows+=("$name=$exp/$name/score.json"); done
  asctool results --out "$exp/RESULTS.md" --title "DCASE 2020 Task 1a with unlabelled target clips" "${rows[@]}" --force
  cat "$exp/RESULTS.md"
fi
log "done in $(elapsed "$start_time")"
