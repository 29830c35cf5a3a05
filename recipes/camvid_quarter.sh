#!/usr/bin/env bash
# Issue 39, goal 2 on a 2-core CPU: a quarter-width U-Net, which fits 1.5 times LR-ASPP's time, every
# choice made on sequence 0006R0 with protocol models that never saw it (docs/training.md, "A
# quarter-width U-Net"). Cut from the half-width one (seg.slim, with and without it as teacher) or
# trained from scratch, each then tuned as the shipped models were: from scratch won, and trained for 48
# epochs rather than 12 it won by more, so the ship stage trains that one at full size and ships it as
# weights/camvid/unet_quarter.safetensors.
#
#   recipes/camvid_quarter.sh protocol   # a protocol half-width U-Net; quarter-width ones cut from it and
#                                        # from scratch, all tuned alike
#   recipes/camvid_quarter.sh longer     # quarter-width ones from scratch for BASE_EPOCHS (default "24 48")
#                                        # instead of 12, each tuned as the shipped one by recipes/camvid_tune.sh
#                                        # (SEEDS, default "0 1")
#   recipes/camvid_quarter.sh compare    # each on 0006R0
#   recipes/camvid_quarter.sh ship       # from scratch at 360x480 on train+val for 48 epochs, then tuned for
#                                        # 16 (runs/q-unet-e48), shipped as weights/camvid/unet_quarter.safetensors
#
# Every run writes runs/<name>/model.safetensors with its card and runs/<name>.log, and goes on where it
# stopped when the stage is started again (--resume): the ship stage takes about 3 hours on 2 cores, so
# it may take more than one sitting.
# Needs CamVid in $SEG_CAMVID_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

HALF=(--data camvid --resize 180 240 --batch-size 8 --workers 1 --no-progress --seed 0 --holdout-sequence 0006R0)
BASE_EPOCHS=${BASE_EPOCHS:-24 48}  # the longer stage's bases
# shellcheck disable=SC2086  # recipes/camvid_tune.sh's names for them: unetq-e24 unetq-e48
LONGER=$(printf 'unetq-e%s ' $BASE_EPOCHS)
. recipes/fine_tune.sh
# the fine-tune that made the shipped models: every student gets it
TUNE=("${FINE_TUNE[@]}" "${SHORT_TUNE[@]}")
WEIGHT=${WEIGHT:-0.5}            # the teacher's share of the loss
TEMPERATURE=${TEMPERATURE:-1}
TAU=(--tau 0.5 --chosen-on "sequence 0006R0, as for the shipped models (docs/training.md)")

. recipes/resumable.sh

mkdir -p runs
case "${1:-}" in
  protocol)
    # the wide network, as the protocol U-Net of the ensemble's choice but at the shipped width
    train_run s-unet-w05 --model unet --width-mult 0.5 "${HALF[@]}" --class-weights median --fp16-weights --epochs 12
    python -m seg.cli.tau set --checkpoint runs/s-unet-w05/model.safetensors "${TAU[@]}"
    PROTOCOL=unet recipes/camvid_ensemble.sh protocol   # the quarter-width U-Net from scratch: runs/e-unet
    train_run s-scratch --model unet --width-mult 0.25 "${HALF[@]}" --init-from runs/e-unet/model.safetensors "${TUNE[@]}"
    train_run s-cut --model unet --width-mult 0.25 "${HALF[@]}" --init-from runs/s-unet-w05/model.safetensors "${TUNE[@]}"
    train_run s-cut-taught --model unet --width-mult 0.25 "${HALF[@]}" --init-from runs/s-unet-w05/model.safetensors \
      "${TUNE[@]}" --teacher runs/s-unet-w05/model.safetensors --distill-weight "$WEIGHT" \
      --distill-temperature "$TEMPERATURE"
    ;;
  longer)
    # the shipped quarter-width U-Net's base had the protocol's 12 epochs, and its curve was still
    # rising at the last of them (runs/e-unet.log): the same run for longer, its last epoch kept as
    # the ship stage keeps it, each then given the shipped model's longer tune
    for epochs in $BASE_EPOCHS; do
      train_run "e-unet-e$epochs" --model unet --width-mult 0.25 "${HALF[@]}" --class-weights median \
        --fp16-weights --epochs "$epochs" --average-last 1
    done
    ARMS=long TUNED=$LONGER recipes/camvid_tune.sh protocol  # runs/c-unetq-eN-long-s<seed>, SEEDS "0 1"
    ;;
  compare)
    # the wide and the scratch ones with the logit adjustment the base models carry (the longer bases
    # without: only the 12-epoch ones had tau set); the tuned ones as the shipped tuned models are, without
    # (their square-root class weights take its place)
    for run in s-unet-w05 e-unet s-scratch s-cut s-cut-taught $(printf 'e-unet-e%s ' $BASE_EPOCHS); do
      [ -f "runs/$run/model.safetensors" ] || continue  # the longer stage's bases, if it ran
      python -m seg.cli.evaluate --checkpoint "runs/$run/model.safetensors" --split train --sequence 0006R0 \
        --json "runs/$run.0006R0.json" | tail -1 | sed "s|^|$run: |"
    done
    if [ -f "runs/c-${LONGER%% *}-long-s0/model.safetensors" ]; then  # and their tunes
      ARMS=long TUNED=$LONGER recipes/camvid_tune.sh compare
    fi
    ;;
  ship)
    # every labelled frame we hold, at the images' own 360x480: 48 epochs from scratch (the longer stage's
    # best base on 0006R0; 12 made the quarter-width U-Net shipped before it, runs/q-unet16), then the tune
    FULL=(--model unet --width-mult 0.25 --data camvid --train-split train+val --batch-size 8 --workers 1
          --no-progress --seed 0)
    # its last epoch's weights (averaging one), not its best on val: val is in its training data
    train_run q-unet-e48-base "${FULL[@]}" --class-weights median --fp16-weights --epochs 48 --average-last 1
    # then the longer tune, which beat the 8 epochs on 0006R0 (recipes/camvid_tune.sh, the "long" arm)
    train_run q-unet-e48 "${FULL[@]}" --init-from runs/q-unet-e48-base/model.safetensors "${FINE_TUNE[@]}" \
      "${LONG_TUNE[@]}"
    python recipes/ship.py --run q-unet-e48 --as unet_quarter
    ;;
  *) echo "usage: $0 protocol|compare|ship" >&2; exit 2 ;;
esac
