#!/usr/bin/env bash
# DCASE 2020 Task 1a: the two-stage system of Hu et al. (docs/reference.md), stage by stage.
#
#   bash recipes/dcase2020_1a.sh --data-root /path/to/TAU-urban-acoustic-scenes-2020-mobile-development
#   bash recipes/dcase2020_1a.sh --work-dir demo            # synthesized demo data, --profile demo
#
# Stages (--stage N --stop-stage M select a range; a stage whose outputs exist is
# skipped unless --force, so rerunning after a failure resumes where it failed):
#   0 synth      synthesize the demo dataset (only without --data-root)
#   1 prepare    manifests data/SETUP_{train,evaluate,test}.tsv
#   2 augment    one augmented copy of the training set per method (leakage-guarded)
#   3 featurize  log-mel + deltas, --nj shards per set, combined into data/feats/SET.h5
#   4 train      10-class resnet, fcnn, fsfcnn; 3-class resnet, fcnn (validation:
#                --valid-split of the training locations, held out by asctool train)
#   5 predict    every model on the evaluation set
#   6 combine    mean ensemble per stage, two-stage fusion
#   7 score      every model, ensemble and the fusion (JSON reports)
#   8 results    exp/RESULTS.md (table of docs/reference.md section 6), printed
#   9 cam        class activation maps of a few evaluation clips (3-class and 10-class model)
#
# The stage logic is recipes/TEMPLATE/asc.sh, shared by every system; the models and
# training settings are recipes/conf/dcase2020_1a.yaml. --help lists the options.
set -euo pipefail

system=dcase2020_1a
title="DCASE 2020 Task 1a"
about="DCASE 2020 Task 1a two-stage system (Hu et al.) from data preparation to RESULTS.md."
data_about="TAU 2020 Mobile development root"
stages="synth prepare augment featurize train predict combine score results cam"
aliases=""

# shellcheck source-path=SCRIPTDIR source=TEMPLATE/asc.sh
. "$(dirname "${BASH_SOURCE[0]}")/TEMPLATE/asc.sh"
