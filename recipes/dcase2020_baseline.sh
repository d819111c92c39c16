#!/usr/bin/env bash
# DCASE 2020 Task 1a baseline: OpenL3 embeddings (mel256, music, 512-d) + the MLP of
# Cramer et al. 2019 (docs/shallow.md), stage by stage.
#
#   asctool download openl3 --input-repr mel256 --content-type music --out-dir weights
#   bash recipes/dcase2020_baseline.sh --data-root /path/to/TAU-urban-acoustic-scenes-2020-mobile-development \
#       --weights weights/openl3_audio_mel256_music-v0_4_0.h5.gz
#   bash recipes/dcase2020_baseline.sh --work-dir demo_baseline   # demo data, birdnet extractor
#
# Stages (--stage N --stop-stage M select a range; finished steps are skipped on a rerun):
#   0 synth      synthesize the demo dataset (only without --data-root)
#   1 prepare    manifests data/SETUP_{train,evaluate,test}.tsv
#   2 embed      asctool embed of every set into data/emb/SET.h5 (openl3 with --data-root,
#                birdnet on the demo data; the log and RESULTS.md title say which)
#   3 train      mlp on embedding frames (validation: 10 % of the training clips, stratified
#                by class, as Cramer et al.), logreg on clip-mean embeddings
#   4 predict    every model on the evaluation set (frame probabilities summed per clip)
#   5 score      JSON reports
#   6 results    exp/RESULTS.md with the published baseline figures, printed
#
# The stage logic is recipes/TEMPLATE/asc.sh; the settings are recipes/conf/dcase2020_baseline.yaml.
set -euo pipefail

system=dcase2020_baseline
title="DCASE 2020 Task 1a baseline (embeddings + MLP)"
about="DCASE 2020 Task 1a baseline (OpenL3 + MLP; BirdNET on the demo data) from data preparation to RESULTS.md."
data_about="TAU 2020 Mobile development root"
stages="synth prepare embed train predict score results"
aliases=""

# shellcheck source-path=SCRIPTDIR source=TEMPLATE/asc.sh
. "$(dirname "${BASH_SOURCE[0]}")/TEMPLATE/asc.sh"
