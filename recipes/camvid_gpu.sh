#!/usr/bin/env bash
# The CamVid models we ship, trained at the full 360x480 resolution on one GPU, all five at once.
#
#   recipes/camvid_gpu.sh                             # FCN-32s, FCN-8s, DeepLabv3, U-Net, SegFormer-B0
#   MODELS="fcn8s unet" SEED=1 recipes/camvid_gpu.sh  # some of them, another seed (runs/<name>-seed1)
#
# The recipe of recipes/camvid_cpu.sh (loss, optimiser, augmentation, seed) without --resize and
# with more epochs. Five small models leave most of a large GPU idle: decoding and augmenting images
# on the CPU sets the pace, so they train side by side, each with $WORKERS loader processes.
# Needs CamVid in $SEG_CAMVID_DIR; recipes/pack_camvid.py carries it to a GPU machine.
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
EPOCHS=${EPOCHS:-100}
WORKERS=${WORKERS:-3}
RUNS=${RUNS:-runs}
MODELS=${MODELS:-fcn32s fcn8s deeplabv3 unet segformer_b0}
SEED=${SEED:-0}
COMMON=(--data camvid --epochs "$EPOCHS" --batch-size 8 --lr 2e-3 --workers "$WORKERS"
        --fp16-weights --no-progress --seed "$SEED" --loss ce --class-weights median)
EXTRA=(${EXTRA:-})  # e.g. EXTRA="--limit-train 8 --limit-val 4" for a smoke run

pids=()
train() {  # train <run name> <seg.cli.train arguments...>, in the background
  local name=$1; shift
  [ "$SEED" = 0 ] || name="$name-seed$SEED"
  OMP_NUM_THREADS=2 "$PYTHON" -m seg.cli.train --out "$RUNS/$name" "${COMMON[@]}" "$@" "${EXTRA[@]}" \
    >"$RUNS/$name.log" 2>&1 &
  pids+=($!)
}

mkdir -p "$RUNS"
for name in $MODELS; do
  case $name in
    unet)         train unet --model unet --width-mult 0.5 ;;  # twice the CPU recipe's width
    segformer_b0) train segformer_b0 --model segformer_b0 ;;
    *)            train "$name" --model "$name" ;;
  esac
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
tail -n 2 "$RUNS"/*.log
exit $status
