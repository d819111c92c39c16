#!/usr/bin/env bash
# Acoustic scene classification using audio tagging (Jung et al., Interspeech 2020;
# docs/tag.md, docs/tag_fusion.md), stage by stage: a tagger gives every clip a tag vector,
# and the scene classifier is trained alone and with each tag fusion mode.
#
#   bash recipes/jung2020_tagging.sh --work-dir demo_tags          # demo data, the asctool tagger
#   bash recipes/jung2020_tagging.sh --work-dir demo_tags --tagger birdnet --tagger-opts ""
#   bash recipes/jung2020_tagging.sh --data-root /path/to/TAU-urban-acoustic-scenes-2019-development \
#       --tagger-opts "--tag-subset nonbird.txt"                   # BirdNET tags (see docs/tag.md)
#   # the paper's raw-waveform backbone: add --preset raw --models rawnet
#
# Stages (--stage N --stop-stage M select a range; finished steps are skipped on a rerun):
#   0 synth      synthesize the demo dataset, with its event labels (only without --data-root)
#   1 prepare    manifests data/SETUP_{train,evaluate,test}.tsv (the tags column carried along)
#   2 featurize  log-mel + deltas, --nj shards per set, combined into data/feats/SET.h5
#   3 tag        asctool tagger: train --task tagging on the tags column (exp/tagger), then
#                asctool tag of the training and evaluation sets into data/tags/SET.h5 and the
#                tagger's mAP (exp/tagger/report_evaluate.json); birdnet, keras, tflite: tag only
#   4 train      every model once per mode of tag_fusions (none: the backbone alone;
#                run folders exp/MODEL and exp/MODEL_MODE), the linear probe
#   5 predict    every model on the evaluation set (fused models with the evaluation tags)
#   6 score      JSON reports
#   7 results    exp/RESULTS.md by device group, with the paper's figures, printed
#
# The stage logic is recipes/TEMPLATE/asc.sh; the settings are recipes/conf/jung2020_tagging.yaml.
set -euo pipefail

system=jung2020_tagging
title="Scene classification with audio tagging (Jung et al. 2020)"
about="Jung et al. (Interspeech 2020): a tagger, then the scene classifier alone and with each tag fusion mode, to RESULTS.md."
data_about="TAU Urban Acoustic Scenes development root (2019 or 2020 layout)"
stages="synth prepare featurize tag train predict score results"
aliases=""

# shellcheck source-path=SCRIPTDIR source=TEMPLATE/asc.sh
. "$(dirname "${BASH_SOURCE[0]}")/TEMPLATE/asc.sh"
