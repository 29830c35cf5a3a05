#!/usr/bin/env bash
# Issue 39 on a 2-core CPU: an ensemble of the shipped models, its members, their weights and the
# test-time scales chosen on sequence 0006R0 with "protocol" models that never saw it
# (docs/training.md, "An ensemble of the shipped models").
#
#   recipes/camvid_ensemble.sh protocol   # one protocol model of each shipped kind, 0006R0 held out
#   recipes/camvid_ensemble.sh choose     # members, weights and scales chosen on 0006R0 -> runs/ensemble.json
#   recipes/camvid_ensemble.sh card       # weights/camvid/ensemble.json: the shipped members, the choice
#   recipes/camvid_ensemble.sh fast       # the same within 1.5 times LR-ASPP's time -> runs/fast.json
#   recipes/camvid_ensemble.sh fast-card  # weights/camvid/fast.json
#
# Every protocol run writes runs/e-<model>/model.safetensors with its card and runs/e-<model>.log; a run
# stopped midway goes on where it stopped when the stage is started again (--resume).
# Needs CamVid in $SEG_CAMVID_DIR (python -m seg.cli.download camvid).
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=${EPOCHS:-12}
PROTOCOL=${PROTOCOL:-fcn32s fcn8s deeplabv3 unet segformer_b0}   # the kinds the protocol stage trains
HALF=(--data camvid --resize 180 240 --batch-size 8 --workers 1 --no-progress --seed 0 --holdout-sequence 0006R0
      --class-weights median --fp16-weights --epochs "$EPOCHS")

. recipes/resumable.sh
train() {  # train <model> <seg.cli.train arguments...>: runs/e-<model>, resumed if it stopped
  local model=$1; shift
  train_run "e-$model" --model "$model" "${HALF[@]}" "$@"
}

mkdir -p runs
case "${1:-}" in
  protocol)
    for model in $PROTOCOL; do
      if [ "$model" = unet ]; then train unet --width-mult 0.25; else train "$model"; fi
    done
    ;;
  choose)
    python recipes/ensemble_choice.py --runs runs --sequence 0006R0 --json runs/ensemble.json 2>&1 \
      | tee runs/ensemble_choice.log
    ;;
  card)
    python recipes/ensemble_choice.py --card runs/ensemble.json --weights weights/camvid
    ;;
  fast)  # issue 39, goal 2: the best ensemble of the fast kinds within 1.5 times LR-ASPP's time
    python recipes/ensemble_choice.py --runs runs --sequence 0006R0 --kinds fcn32s fcn8s deeplabv3 \
      --views "1" "1 + flip" "1, 1.25" "1, 1.25 + flip" --budget 1.5 --json runs/fast.json 2>&1 | tee runs/fast.log
    ;;
  fast-card)
    python recipes/ensemble_choice.py --card runs/fast.json --weights weights/camvid --name fast
    ;;
  *) echo "usage: $0 protocol|choose|card|fast|fast-card" >&2; exit 2 ;;
esac
