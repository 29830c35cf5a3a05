#!/usr/bin/env bash
# Issue 39, on a 2-core CPU: levers on the fine-tune that made the shipped models, each against the same
# tune without it, from the protocol FCN-8s and quarter-width U-Net, two seeds each, judged on sequence
# 0006R0, which none of them saw (docs/training.md, "Class-uniform crops" and "A longer fine-tune"):
#   focus: half of the crop windows around a Pole, SignSymbol, Pedestrian or Bicyclist pixel
#          (seg.data.transforms.RandomCrop's class-uniform crops)
#   long:  16 epochs instead of 8, the last 8 averaged instead of 4
#
#   recipes/camvid_tune.sh protocol   # the tunes, from the protocol models of recipes/camvid_ensemble.sh
#                                     # protocol (PROTOCOL="fcn8s unet")
#   recipes/camvid_tune.sh compare    # each on 0006R0
#
# ARMS (default "plain focus long") and SEEDS (default "0 1") choose the runs. Every run writes
# runs/c-<model>[-<arm>]-s<seed>/model.safetensors with its card and a log beside it, and goes on where it
# stopped when the stage is started again. Needs CamVid in $SEG_CAMVID_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

HALF=(--data camvid --resize 180 240 --batch-size 8 --workers 1 --no-progress --holdout-sequence 0006R0)
# the fine-tune that made the shipped models (recipes/camvid_prior.sh ship)
TUNE=(--class-weights sqrt --lr 5e-4 --warmup-steps 0 --fp16-weights)
ARMS=${ARMS:-plain focus long}
SEEDS=${SEEDS:-0 1}

. recipes/resumable.sh

arm() {  # the arm's arguments on top of TUNE
  case $1 in
    plain) echo "--epochs 8 --average-last 4" ;;
    focus) echo "--epochs 8 --average-last 4 --focus-classes Pole SignSymbol Pedestrian Bicyclist --focus-share 0.5" ;;
    long) echo "--epochs 16 --average-last 8" ;;
    *) echo "unknown arm $1" >&2; return 2 ;;
  esac
}

runs() {  # <run name> <arm> <seed> <protocol model> <architecture arguments>
  for seed in $SEEDS; do
    for arm in $ARMS; do
      suffix=$([ "$arm" = plain ] && echo "" || echo "-$arm")
      echo "c-fcn8s$suffix-s$seed $arm $seed e-fcn8s --model fcn8s"
      echo "c-unetq$suffix-s$seed $arm $seed e-unet --model unet --width-mult 0.25"
    done
  done
}

mkdir -p runs
case "${1:-}" in
  protocol)
    for model in e-fcn8s e-unet; do
      [ -f "runs/$model/model.safetensors" ] || { echo "runs/$model: run recipes/camvid_ensemble.sh protocol" >&2; exit 1; }
    done
    runs | while read -r name arm seed start architecture; do
      # shellcheck disable=SC2046,SC2086  # the arm's and the architecture's arguments are words
      train_run "$name" $architecture "${HALF[@]}" --seed "$seed" --init-from "runs/$start/model.safetensors" \
        "${TUNE[@]}" $(arm "$arm") < /dev/null
    done
    ;;
  compare)
    # tuned as the shipped tuned models are: no logit adjustment (square-root weights take its place)
    runs | while read -r name _; do
      python -m seg.cli.evaluate --checkpoint "runs/$name/model.safetensors" --split train --sequence 0006R0 \
        --json "runs/$name.0006R0.json" < /dev/null | tail -1 | sed "s|^|$name: |"
    done
    ;;
  *) echo "usage: $0 protocol|compare" >&2; exit 2 ;;
esac
