#!/usr/bin/env bash
# Issue 39 on a 2-core CPU: an ensemble of the shipped models, its members, their weights and the
# test-time scales chosen on sequence 0006R0 with "protocol" models that never saw it
# (docs/training.md, "An ensemble of the shipped models").
#
#   recipes/camvid_ensemble.sh protocol   # one protocol model of each shipped kind, 0006R0 held out
#   recipes/camvid_ensemble.sh tuned      # those the shipped models' fine-tunes were, tuned the same way
#   recipes/camvid_ensemble.sh longer     # the same from BASE_EPOCHS epochs from scratch instead of 12 (last
#                                         # epoch kept), as the shipped quarter-width U-Net's base now is
#   recipes/camvid_ensemble.sh choose     # members, weights and scales chosen on 0006R0 -> runs/ensemble.json
#   recipes/camvid_ensemble.sh card       # weights/camvid/ensemble.json: the shipped members, the choice
#   recipes/camvid_ensemble.sh fast       # the same within 1.5 times LR-ASPP's time -> runs/fast.json
#   recipes/camvid_ensemble.sh fast-card  # weights/camvid/fast.json
#
# Every protocol run writes runs/<name>/model.safetensors with its card and runs/<name>.log; a run
# stopped midway goes on where it stopped when the stage is started again (--resume). A shipped model
# that was fine-tuned is stood for by its protocol model fine-tuned as it was (TUNED_RUNS), the others
# by runs/e-<kind>. The half-width U-Net's protocol model comes from recipes/camvid_quarter.sh protocol.
# With BASE_EPOCHS set (e.g. 48), choose and fast read the longer stage's twins instead, and write
# runs/ensemble-e<N>.json and runs/fast-e<N>.json: the quarter-width twin then comes from
# recipes/camvid_quarter.sh longer, which trains and tunes it the same way.
# Needs CamVid in $SEG_CAMVID_DIR (python -m seg.cli.download camvid).
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=${EPOCHS:-12}
PROTOCOL=${PROTOCOL:-fcn32s fcn8s deeplabv3 unet segformer_b0}   # the kinds the protocol stage trains
HALF=(--data camvid --resize 180 240 --batch-size 8 --workers 1 --no-progress --seed 0 --holdout-sequence 0006R0
      --class-weights median --fp16-weights)
BASE_EPOCHS=${BASE_EPOCHS:-}     # the longer stage's length; unset, the choices read the 12-epoch twins

# the shipped fine-tuned models' protocol twins (recipes/camvid_tune.sh): FCN-8s and both U-Nets tuned for
# 16 epochs, DeepLabv3 for 8, as each shipped one was (docs/training.md, "A longer fine-tune")
if [ -n "$BASE_EPOCHS" ]; then
  N=$BASE_EPOCHS
  TUNED_RUNS=${TUNED_RUNS:-fcn32s=e-fcn32s-e$N fcn8s=c-fcn8s-e$N-long-s0 deeplabv3=c-deeplabv3-e$N-s0
              unet=c-unet-e$N-long-s0 unet_quarter=c-unetq-e$N-long-s0}
  SUFFIX=-e$N
else
  TUNED_RUNS=${TUNED_RUNS:-fcn8s=c-fcn8s-long-s0 deeplabv3=c-deeplabv3-s0 unet=c-unet-long-s0
              unet_quarter=c-unetq-long-s0}
  SUFFIX=
fi
# shellcheck disable=SC2206  # KIND=RUN pairs, one word each
CHOICE=(--runs runs --sequence 0006R0 --protocol $TUNED_RUNS)
made_by() {  # made_by <choice stage> <card stage>: the card's command, every stage that made its choice
  if [ -z "$BASE_EPOCHS" ]; then return; fi  # ensemble_choice.py's default names the 12-epoch stages
  local e="BASE_EPOCHS=$N" r=recipes/camvid_ensemble.sh
  echo "--command"
  echo "$e recipes/camvid_quarter.sh longer && $e $r longer && $e $r $1 && $e $r $2"
}

. recipes/resumable.sh
train() {  # train <model> <seg.cli.train arguments...>: runs/e-<model>, EPOCHS long, resumed if it stopped
  local model=$1; shift
  train_run "e-$model" --model "$model" "${HALF[@]}" --epochs "$EPOCHS" "$@"
}

mkdir -p runs
case "${1:-}" in
  protocol)
    for model in $PROTOCOL; do
      if [ "$model" = unet ]; then train unet --width-mult 0.25; else train "$model"; fi
    done
    ;;
  tuned)
    SEEDS=0 ARMS=long TUNED="fcn8s unetq unet" recipes/camvid_tune.sh protocol
    SEEDS=0 ARMS=plain TUNED=deeplabv3 recipes/camvid_tune.sh protocol
    ;;
  longer)
    # the shipped models had 100 epochs from scratch, the twins 12; 48 lifted the quarter-width twin far
    # beyond a reseed's noise (docs/training.md, "A longer from-scratch run for the quarter-width U-Net"),
    # so the other twins get as many before a choice weighs them against it
    [ -n "$BASE_EPOCHS" ] || { echo "set BASE_EPOCHS, e.g. BASE_EPOCHS=48 $0 longer" >&2; exit 2; }
    LAST=(--epochs "$N" --average-last 1)  # the last epoch kept, as by recipes/camvid_quarter.sh longer
    for model in fcn32s fcn8s deeplabv3; do
      train_run "e-$model-e$N" --model "$model" "${HALF[@]}" "${LAST[@]}"
    done
    train_run "s-unet-w05-e$N" --model unet --width-mult 0.5 "${HALF[@]}" "${LAST[@]}"
    SEEDS=0 ARMS=long TUNED="fcn8s-e$N unet-e$N" recipes/camvid_tune.sh protocol
    SEEDS=0 ARMS=plain TUNED="deeplabv3-e$N" recipes/camvid_tune.sh protocol
    ;;
  choose)  # SegFormer-B0 left out: its protocol model added nothing to the first choice (docs/training.md)
    python recipes/ensemble_choice.py "${CHOICE[@]}" --kinds fcn32s fcn8s deeplabv3 unet unet_quarter \
      --json "runs/ensemble$SUFFIX.json" 2>&1 | tee "runs/ensemble_choice$SUFFIX.log"
    ;;
  card)
    mapfile -t command < <(made_by choose card)
    python recipes/ensemble_choice.py --card "runs/ensemble$SUFFIX.json" --weights weights/camvid "${command[@]}"
    ;;
  fast)  # issue 39, goal 2: the best ensemble of the fast kinds within 1.5 times LR-ASPP's time
    python recipes/ensemble_choice.py "${CHOICE[@]}" --kinds fcn32s fcn8s deeplabv3 unet_quarter \
      --views "1" "1 + flip" "1, 1.25" "1, 1.25 + flip" --budget 1.5 --name fast --json "runs/fast$SUFFIX.json" \
      2>&1 | tee "runs/fast$SUFFIX.log"
    ;;
  fast-card)
    mapfile -t command < <(made_by fast fast-card)
    python recipes/ensemble_choice.py --card "runs/fast$SUFFIX.json" --weights weights/camvid --name fast \
      "${command[@]}"
    ;;
  *) echo "usage: $0 protocol|tuned|longer|choose|card|fast|fast-card" >&2; exit 2 ;;
esac
