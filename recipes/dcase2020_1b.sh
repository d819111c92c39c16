#!/usr/bin/env bash
# DCASE 2020 Task 1b: two small 3-class models, quantised, under 500 KB together (Hu et al.).
#
#   bash recipes/dcase2020_1b.sh --data-root /path/to/TAU-urban-acoustic-scenes-2020-3class-development
#   bash recipes/dcase2020_1b.sh --work-dir demo1b     # synthesized 48 kHz stereo demo data
#
# Stages (--stage N --stop-stage M; a stage whose outputs exist is skipped unless
# --force, so rerunning after a failure resumes where it failed):
#   0 synth      synthesize 48 kHz stereo device-a demo data (only without --data-root)
#   1 prepare    manifests data/SETUP_{train,evaluate}.tsv
#   2 split      training manifest -> train_sub + valid: --valid-split of each class's
#                locations held out (the draw of asctool train --valid-split)
#   3 featurize  preset 1b (128 x 461 x 6), --nj shards per set, combined
#   4 train      mobnet and small_fcnn, 3 classes (batch augmentation incl. channel swap)
#   5 quantize   TensorFlow Lite dynamic-range quantisation; the pair must fit --max-kb
#                (by default counted as parameters x 8 bits, the DCASE 2020 rule)
#   6 predict    Keras and TFLite models on the evaluation set, TFLite on validation
#   7 combine    mean ensemble and logistic regression fitted on the validation scores
#   8 score      every model and ensemble (JSON reports)
#   9 results    exp/RESULTS.md with sizes, printed
#
# The stage logic is recipes/TEMPLATE/asc.sh, shared by every system; the models and
# training settings are recipes/conf/dcase2020_1b.yaml. --help lists the options;
# --valid-fraction is the deprecated name of --valid-split.
set -euo pipefail

system=dcase2020_1b
title="DCASE 2020 Task 1b"
about="DCASE 2020 Task 1b (Hu et al.): Mobnet + small-FCNN, quantised, under 500 KB together."
data_about="TAU 2020 3Class development root"
stages="synth prepare split featurize train quantize predict combine score results"
aliases="valid_fraction:valid_split"

# shellcheck source-path=SCRIPTDIR source=TEMPLATE/asc.sh
. "$(dirname "${BASH_SOURCE[0]}")/TEMPLATE/asc.sh"
