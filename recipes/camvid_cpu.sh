#!/usr/bin/env bash
# The CamVid models on a 2-core CPU, at half resolution (180x240). The weights we ship come from the
# same recipe on a GPU at full resolution (recipes/camvid_gpu.sh); docs/training.md compares the two.
#
#   recipes/camvid_cpu.sh ablation   # FCN-8s, 12 epochs, with three losses; the best one is kept
#   recipes/camvid_cpu.sh holdout    # the same three losses x two seeds, validated on sequence 0006R0
#   recipes/camvid_cpu.sh models     # FCN-32s, FCN-8s, DeepLabv3, U-Net, SegFormer-B0 with that loss
#                                    # (= "cnn" then "slow"; "slow" = "unet" then "segformer")
#   recipes/camvid_cpu.sh synthetic  # the small models behind the app's teaching demos
#
# Every run writes runs/<name>/model.safetensors with its JSON card (which repeats the exact command).
# Needs CamVid in $SEG_CAMVID_DIR (python -m seg.cli.download camvid).
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=${EPOCHS:-30}
# Half resolution keeps an epoch of FCN-8s near 15 s on 2 cores; scores are still taken at 360x480.
COMMON=(--data camvid --resize 180 240 --epochs "$EPOCHS" --batch-size 8 --lr 2e-3 --workers 1
        --fp16-weights --no-progress --seed 0)
BEST_LOSS=(${BEST_LOSS:---loss ce --class-weights median})  # the ablation's winner (see docs/training.md)

train() {  # train <run name> <seg.cli.train arguments...>
  local name=$1; shift
  python -m seg.cli.train --out "runs/$name" "${COMMON[@]}" "$@" 2>&1 | tee "runs/$name.log"
}

mkdir -p runs
case "${1:-}" in
  ablation)
    # a short schedule (12 epochs) to choose the loss; the shipped models then train for $EPOCHS
    train ablation-ce        --model fcn8s --loss ce --epochs 12
    train ablation-ce-median --model fcn8s --loss ce --class-weights median --epochs 12
    train ablation-ce-dice   --model fcn8s --loss ce+dice --epochs 12
    ;;
  holdout)
    # Select on a sequence no model has seen (issue 13, step 1): train on 0001TP + 0016E5, validate on
    # 0006R0; the three losses of the ablation, two seeds each, to tell a gain from the seed spread.
    for seed in 0 1; do
      for loss in "ce" "ce --class-weights median" "ce+dice"; do
        name="holdout-fcn8s-${loss//[ -]/_}-s$seed"
        train "$name" --model fcn8s --holdout-sequence 0006R0 --epochs "${HOLDOUT_EPOCHS:-20}" --seed "$seed" \
          --loss $loss
      done
    done
    ;;
  models) "$0" cnn && "$0" slow ;;
  slow) "$0" unet && "$0" segformer ;;
  cnn)
    train fcn32s      --model fcn32s "${BEST_LOSS[@]}"
    train fcn8s       --model fcn8s "${BEST_LOSS[@]}"
    train deeplabv3   --model deeplabv3 "${BEST_LOSS[@]}"
    ;;
  unet)
    # U-Net runs its convolutions at full resolution: a quarter of the width keeps an epoch near
    # 50 s on 2 cores.
    train unet        --model unet --width-mult 0.25 "${BEST_LOSS[@]}"
    ;;
  segformer)
    # SegFormer-B0 from scratch (its widths are fixed): ~65 s an epoch at 180x240 on 2 cores.
    train segformer_b0 --model segformer_b0 "${BEST_LOSS[@]}"
    ;;
  synthetic)
    for model in fcn32s fcn8s unet; do
      python -m seg.cli.train --model "$model" --data synthetic --synthetic-images 256 --epochs 6 \
        --fp16-weights --no-progress --seed 0 --out "runs/synthetic-$model" 2>&1 | tee "runs/synthetic-$model.log"
    done
    ;;
  *) echo "usage: $0 ablation|models|cnn|slow|unet|segformer|synthetic" >&2; exit 2 ;;
esac
