#!/usr/bin/env bash
# Issue 39, goal 2 on a 2-core CPU: a fast model taught by the ensemble (seg.distill), every setting
# chosen on sequence 0006R0 with protocol models that never saw it (docs/training.md, "Distilling the
# ensemble into FCN-8s").
#
#   recipes/camvid_distill.sh protocol   # protocol FCN-8s and U-Net, their prior, the protocol teacher,
#                                        # and the protocol FCN-8s fine-tuned as the shipped one was
#   recipes/camvid_distill.sh compare    # from that FCN-8s, more epochs: without a teacher, and with it
#   recipes/camvid_distill.sh ship       # the shipped FCN-8s taught by the shipped ensemble, train+val
#
# Every run writes runs/<name>/model.safetensors with its card and runs/<name>.log, and goes on where it
# stopped when the stage is started again (--resume). Needs CamVid in $SEG_CAMVID_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

HALF=(--data camvid --resize 180 240 --batch-size 8 --workers 1 --no-progress --seed 0 --holdout-sequence 0006R0)
. recipes/fine_tune.sh
# the fine-tune that made the shipped FCN-8s, and the one a student gets
TUNE=("${FINE_TUNE[@]}" "${SHORT_TUNE[@]}")
# the teacher's share and temperature of each compared student: "name weight temperature"
STUDENTS=${STUDENTS:-"d-kd-w05-t1 0.5 1
d-kd-w05-t2 0.5 2"}
SHIP_WEIGHT=${SHIP_WEIGHT:-0.5}
SHIP_TEMPERATURE=${SHIP_TEMPERATURE:-1}

. recipes/resumable.sh

mkdir -p runs
case "${1:-}" in
  protocol)
    PROTOCOL="fcn8s unet" recipes/camvid_ensemble.sh protocol
    python -m seg.cli.tau set --checkpoint runs/e-fcn8s/model.safetensors runs/e-unet/model.safetensors --tau 0.5 \
      --chosen-on "sequence 0006R0, as for the shipped models (docs/training.md)"
    python recipes/ensemble_choice.py --protocol-card --runs runs
    train_run e-fcn8s-ft --model fcn8s "${HALF[@]}" --init-from runs/e-fcn8s/model.safetensors "${TUNE[@]}"
    ;;
  compare)
    train_run d-none --model fcn8s "${HALF[@]}" --init-from runs/e-fcn8s-ft/model.safetensors "${TUNE[@]}"
    while read -r name weight temperature; do
      train_run "$name" --model fcn8s "${HALF[@]}" --init-from runs/e-fcn8s-ft/model.safetensors "${TUNE[@]}" \
        --teacher runs/e-ensemble.json --distill-weight "$weight" --distill-temperature "$temperature"
    done <<< "$STUDENTS"
    for run in e-fcn8s-ft d-none $(cut -d' ' -f1 <<< "$STUDENTS"); do
      python -m seg.cli.evaluate --checkpoint "runs/$run/model.safetensors" --split train --sequence 0006R0 \
        --json "runs/$run.0006R0.json" | tail -1 | sed "s|^|$run: |"
    done
    python -m seg.cli.evaluate --checkpoint runs/e-ensemble.json --split train --sequence 0006R0 \
      --json runs/e-ensemble.0006R0.json | tail -1 | sed "s|^|teacher: |"
    ;;
  ship)
    # every labelled frame we hold, at the images' own 360x480, from the FCN-8s we ship
    train_run d-fcn8s --model fcn8s --data camvid --train-split train+val --batch-size 8 --workers 1 --no-progress \
      --seed 0 --init-from weights/camvid/fcn8s.safetensors "${TUNE[@]}" --teacher weights/camvid/ensemble.json \
      --distill-weight "$SHIP_WEIGHT" --distill-temperature "$SHIP_TEMPERATURE"
    ;;
  *) echo "usage: $0 protocol|compare|ship" >&2; exit 2 ;;
esac
