#!/usr/bin/env bash
# Issue 27 on a 2-core CPU: correct the shipped models' class prior, then fine-tune them, choosing
# every setting on sequence 0006R0 with "protocol" models that never saw it (docs/training.md).
#
#   recipes/camvid_prior.sh protocol   # FCN-8s (2 seeds) and U-Net with median weights, 0006R0 held out
#   recipes/camvid_prior.sh tau        # the logit adjustment's tau, chosen on 0006R0 with those models
#   recipes/camvid_prior.sh budget     # fine-tune the protocol FCN-8s with plain or square-root weights
#   recipes/camvid_prior.sh ship       # fine-tune the shipped FCN-8s and U-Net on train+val, full size
#
# Every run writes runs/<name>/model.safetensors with its card and runs/<name>.log.
# Needs CamVid in $SEG_CAMVID_DIR (python -m seg.cli.download camvid).
set -euo pipefail
cd "$(dirname "$0")/.."

HALF=(--data camvid --resize 180 240 --batch-size 8 --workers 1 --no-progress --seed 0)
HOLDOUT=(--holdout-sequence 0006R0)
# the fine-tuning settings the budget stage compares and the ship stage uses
FT_LR=${FT_LR:-5e-4}
FT_EPOCHS=${FT_EPOCHS:-8}
FT_AVERAGE=${FT_AVERAGE:-4}
FT_WEIGHTS=${FT_WEIGHTS:-sqrt}   # the budget stage's winner on 0006R0 (docs/training.md): sqrt, then none
SHIP_MODELS=${SHIP_MODELS:-fcn8s unet}

train() {  # train <run name> <seg.cli.train arguments...>
  local name=$1; shift
  python -m seg.cli.train --out "runs/$name" "$@" 2>&1 | tee "runs/$name.log"
}

mkdir -p runs
case "${1:-}" in
  protocol)
    # the shipped models' loss (median-frequency weights), at the CPU's half resolution and 20 epochs
    for seed in 0 1; do
      train "p-fcn8s-median-s$seed" --model fcn8s "${HALF[@]}" "${HOLDOUT[@]}" --epochs 20 --seed "$seed" \
        --class-weights median --fp16-weights
    done
    train p-unet-median-s0 --model unet --width-mult 0.25 "${HALF[@]}" "${HOLDOUT[@]}" --epochs 20 \
      --class-weights median --fp16-weights
    ;;
  tau)
    python -m seg.cli.tau sweep --checkpoint runs/p-fcn8s-median-s0/model.safetensors \
      runs/p-fcn8s-median-s1/model.safetensors runs/p-unet-median-s0/model.safetensors \
      --split train --sequence 0006R0 --json runs/tau.json 2>&1 | tee runs/tau.log
    ;;
  budget)
    # from a model that never saw 0006R0, as the shipped ones never saw the test split
    for weights in none sqrt; do
      train "p-fcn8s-ft-$weights" --model fcn8s "${HALF[@]}" "${HOLDOUT[@]}" \
        --init-from runs/p-fcn8s-median-s0/model.safetensors --class-weights "$weights" \
        --lr "$FT_LR" --warmup-steps 0 --epochs "$FT_EPOCHS" --average-last "$FT_AVERAGE" --fp16-weights
    done
    ;;
  ship)
    # every labelled frame we hold, at the images' own 360x480, from the weights we ship
    for model in $SHIP_MODELS; do
      train "ft-$model" --model "$model" --data camvid --train-split train+val --batch-size 8 --workers 1 \
        --no-progress --seed 0 --init-from "weights/camvid/$model.safetensors" --class-weights "$FT_WEIGHTS" \
        --lr "$FT_LR" --warmup-steps 0 --epochs "$FT_EPOCHS" --average-last "$FT_AVERAGE" --fp16-weights
    done
    ;;
  *) echo "usage: $0 protocol|tau|budget|ship" >&2; exit 2 ;;
esac
