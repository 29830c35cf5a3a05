#!/usr/bin/env bash
# Issue 39, on a 2-core CPU: levers on the fine-tune that made the shipped models, each against the same
# tune without it, from the protocol FCN-8s and quarter-width U-Net, two seeds each, judged on sequence
# 0006R0, which none of them saw (docs/training.md, "Class-uniform crops" and "A longer fine-tune"):
#   focus: half of the crop windows around a Pole, SignSymbol, Pedestrian or Bicyclist pixel
#          (seg.data.transforms.RandomCrop's class-uniform crops)
#   long:  16 epochs instead of 8, the last 8 averaged instead of 4
#
#   recipes/camvid_tune.sh protocol   # the tunes, from the protocol models of recipes/camvid_ensemble.sh
#                                     # protocol (PROTOCOL="fcn8s unet deeplabv3")
#   recipes/camvid_tune.sh compare    # each on 0006R0
#   recipes/camvid_tune.sh ship       # the longer tune of the shipped MODELS, on train+val at full size,
#                                     # from the weights the shipped tunes started from (SegFormer-B0, never
#                                     # tuned before: from its shipped folder), shipped over them
#
# ARMS (default "plain focus long"), SEEDS (default "0 1") and TUNED (default "fcn8s unetq"; also
# deeplabv3, segformer_b0, unet: the half-width protocol U-Net of recipes/camvid_quarter.sh protocol;
# unetq-eN: the quarter-width one trained N epochs from scratch by its longer stage; fcn8s-eN, deeplabv3-eN
# and unet-eN: those recipes/camvid_ensemble.sh longer trains for N) choose the protocol's runs, MODELS
# (default "fcn8s unet", those the protocol showed it helps) the shipped ones.
# Every run writes runs/<name>/model.safetensors with its card and a log beside it, and goes on where it
# stopped when the stage is started again. Needs CamVid in $SEG_CAMVID_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

HALF=(--data camvid --resize 180 240 --batch-size 8 --workers 1 --no-progress --holdout-sequence 0006R0)
. recipes/fine_tune.sh  # the fine-tune that made the shipped models, FINE_TUNE, and its lengths
ARMS=${ARMS:-plain focus long}
SEEDS=${SEEDS:-0 1}
TUNED=${TUNED:-fcn8s unetq}
MODELS=${MODELS:-fcn8s unet}
# the commit whose weights/camvid/<model> the shipped 8-epoch tunes started from (their cards' fine_tuned_from)
BASE=1b88440

. recipes/resumable.sh

arm() {  # the arm's arguments on top of FINE_TUNE
  case $1 in
    plain) echo "--epochs 8 --average-last 4" ;;
    focus) echo "--epochs 8 --average-last 4 --focus-classes Pole SignSymbol Pedestrian Bicyclist --focus-share 0.5" ;;
    long) echo "${LONG_TUNE[*]}" ;;
    *) echo "unknown arm $1" >&2; return 2 ;;
  esac
}

runs() {  # <run name> <arm> <seed> <protocol model> <architecture arguments>
  for seed in $SEEDS; do
    for arm in $ARMS; do
      suffix=$([ "$arm" = plain ] && echo "" || echo "-$arm")
      for tuned in $TUNED; do
        case $tuned in
          fcn8s) echo "c-fcn8s$suffix-s$seed $arm $seed e-fcn8s --model fcn8s" ;;
          unetq) echo "c-unetq$suffix-s$seed $arm $seed e-unet --model unet --width-mult 0.25" ;;
          unetq-e*) echo "c-$tuned$suffix-s$seed $arm $seed e-unet-${tuned#unetq-} --model unet --width-mult 0.25" ;;
          unet) echo "c-unet$suffix-s$seed $arm $seed s-unet-w05 --model unet --width-mult 0.5" ;;
          unet-e*) echo "c-$tuned$suffix-s$seed $arm $seed s-unet-w05-${tuned#unet-} --model unet --width-mult 0.5" ;;
          fcn8s-e* | deeplabv3-e*) echo "c-$tuned$suffix-s$seed $arm $seed e-$tuned --model ${tuned%-e*}" ;;
          deeplabv3) echo "c-deeplabv3$suffix-s$seed $arm $seed e-deeplabv3 --model deeplabv3" ;;
          segformer_b0) echo "c-segformer_b0$suffix-s$seed $arm $seed e-segformer_b0 --model segformer_b0" ;;
          *) echo "unknown protocol model $tuned" >&2; return 2 ;;
        esac
      done
    done
  done
}

mkdir -p runs
case "${1:-}" in
  protocol)
    runs | while read -r _ _ _ start _; do  # every start the table names, before any run trains
      case $start in
        s-unet-w05) recipe="camvid_quarter.sh protocol" ;;
        e-unet-e*) recipe="camvid_quarter.sh longer" ;;
        e-*-e* | s-unet-w05-e*) recipe="camvid_ensemble.sh longer" ;;
        *) recipe="camvid_ensemble.sh protocol" ;;
      esac
      [ -f "runs/$start/model.safetensors" ] || { echo "runs/$start: run recipes/$recipe" >&2; exit 1; }
    done
    runs | while read -r name arm seed start architecture; do
      # shellcheck disable=SC2046,SC2086  # the arm's and the architecture's arguments are words
      train_run "$name" $architecture "${HALF[@]}" --seed "$seed" --init-from "runs/$start/model.safetensors" \
        "${FINE_TUNE[@]}" $(arm "$arm") < /dev/null
    done
    ;;
  compare)
    # tuned as the shipped tuned models are: no logit adjustment (square-root weights take its place)
    runs | while read -r name _; do
      python -m seg.cli.evaluate --checkpoint "runs/$name/model.safetensors" --split train --sequence 0006R0 \
        --json "runs/$name.0006R0.json" < /dev/null | tail -1 | sed "s|^|$name: |"
    done
    ;;
  ship)
    for model in $MODELS; do
      if [ "$model" = segformer_b0 ]; then
        # never tuned before: from the shipped folder, which the tune then replaces (a finished run is not
        # trained again, so a second start of this stage does not tune the tuned one)
        start=weights/camvid/segformer_b0
      else
        # the start: the shipped weights as they were before their 8-epoch tune, with their card
        mkdir -p "runs/base-$model"
        git show "$BASE:weights/camvid/$model.safetensors" > "runs/base-$model/model.safetensors"
        # its command as it runs today: seg.train became seg.cli.train after (9822cc4)
        git show "$BASE:weights/camvid/$model.json" | sed 's/python -m seg\.train /python -m seg.cli.train /' \
          > "runs/base-$model/model.json"
        start=runs/base-$model/model.safetensors
      fi
      train_run "l-$model" --model "$model" --data camvid --train-split train+val --batch-size 8 --workers 1 \
        --no-progress --seed 0 --init-from "$start" "${FINE_TUNE[@]}" "${LONG_TUNE[@]}" < /dev/null
      python recipes/ship.py --run "l-$model" --as "$model"
    done
    ;;
  *) echo "usage: $0 protocol|compare|ship" >&2; exit 2 ;;
esac
