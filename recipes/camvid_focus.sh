#!/usr/bin/env bash
# Issue 39, on a 2-core CPU: do class-uniform crops (seg.data.transforms.RandomCrop's focus) lift the
# weakest classes? The fine-tune that made the shipped models, run again on the protocol models with
# half of its crop windows placed around a Pole, SignSymbol, Pedestrian or Bicyclist pixel, against the
# same tune without, two seeds each, judged on sequence 0006R0, which none of them saw
# (docs/training.md, "Class-uniform crops").
#
#   recipes/camvid_focus.sh protocol   # the tunes, from the protocol FCN-8s and quarter-width U-Net
#                                      # (recipes/camvid_ensemble.sh protocol, PROTOCOL="fcn8s unet")
#   recipes/camvid_focus.sh compare    # each on 0006R0
#
# Every run writes runs/<name>/model.safetensors with its card and runs/<name>.log, and goes on where it
# stopped when the stage is started again. Needs CamVid in $SEG_CAMVID_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

HALF=(--data camvid --resize 180 240 --batch-size 8 --workers 1 --no-progress --holdout-sequence 0006R0)
# the fine-tune that made the shipped models (recipes/camvid_prior.sh ship)
TUNE=(--class-weights sqrt --lr 5e-4 --warmup-steps 0 --epochs 8 --average-last 4 --fp16-weights)
FOCUS=(--focus-classes Pole SignSymbol Pedestrian Bicyclist --focus-share "${SHARE:-0.5}")
SEEDS=${SEEDS:-0 1}

. recipes/resumable.sh

runs() {  # the run names and their starts: <name> <protocol model> <architecture arguments>
  for seed in $SEEDS; do
    echo "c-fcn8s-s$seed e-fcn8s --model fcn8s"
    echo "c-fcn8s-focus-s$seed e-fcn8s --model fcn8s"
    echo "c-unetq-s$seed e-unet --model unet --width-mult 0.25"
    echo "c-unetq-focus-s$seed e-unet --model unet --width-mult 0.25"
  done
}

mkdir -p runs
case "${1:-}" in
  protocol)
    for model in e-fcn8s e-unet; do
      [ -f "runs/$model/model.safetensors" ] || { echo "runs/$model: run recipes/camvid_ensemble.sh protocol" >&2; exit 1; }
    done
    runs | while read -r name start architecture; do
      seed=${name##*-s}
      focus=()
      [[ $name == *-focus-* ]] && focus=("${FOCUS[@]}")
      # shellcheck disable=SC2086  # the architecture's arguments are words
      train_run "$name" $architecture "${HALF[@]}" --seed "$seed" --init-from "runs/$start/model.safetensors" \
        "${TUNE[@]}" "${focus[@]}" < /dev/null
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
