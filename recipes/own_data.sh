#!/usr/bin/env bash
# Your own labelled clips: a CNN trained with the cpu profile next to the linear probe, per fold.
#
#   bash recipes/own_data.sh --data-root ESC-50 --profile cpu --folds 1,2,3,4,5 --duration auto --resample preset
#   bash recipes/own_data.sh --data-root UrbanSound8K --profile cpu --fold 1 --duration 4 --pad-tolerance 1
#
# The data: anything asctool prepare reads with an evaluation set (a metadata CSV with a
# fold column, ESC-50 or UrbanSound8K style, with --fold K or --folds; a TAU-style tree with
# evaluation_setup/). See docs/own-data.md.
#
# Stages (--stage N --stop-stage M select a range; a stage whose outputs exist is skipped):
#   0 prepare    manifests data/SETUP_{train,evaluate}.tsv (+ SETUP_classes.txt: the classes found)
#   1 split      --valid-split of the training clips for validation (whole locations, else
#                stratified by class)
#   2 featurize  log-mel + deltas (--duration, --pad-tolerance, --resample for other clips)
#   3 train      the models (conf: fcnn) and the linear probe (logreg on clip log-mel statistics)
#   4 predict    every model on the evaluation set
#   5 score      per class (no device groups when the data has no devices)
#   6 results    exp/RESULTS.md; with --folds, mean ± std over the folds
#
# The stage logic is recipes/TEMPLATE/asc.sh; the settings are recipes/conf/own_data.yaml.
set -euo pipefail

system=own_data
title="Own data"
about="Your own labelled clips (docs/own-data.md): CNNs next to the linear probe, per fold, to RESULTS.md."
data_about="data set root: a metadata CSV with folds (use --fold K or --folds) or a TAU-style tree"
stages="prepare split featurize train predict score results"
aliases=""

# shellcheck source-path=SCRIPTDIR source=TEMPLATE/asc.sh
. "$(dirname "${BASH_SOURCE[0]}")/TEMPLATE/asc.sh"
