# Sourced by the recipes whose runs go on where they stopped (camvid_ensemble, camvid_distill,
# camvid_quarter): one definition of when a run is finished.

train_run() {  # train_run <run name> <seg.cli.train arguments, --epochs among them>: skips a finished run,
               # resumes a stopped one (--resume from runs/<name>/last.pt)
  local out="runs/$1"; shift
  local epochs="" previous=""
  for arg in "$@"; do [ "$previous" = --epochs ] && epochs=$arg; previous=$arg; done
  [ -n "$epochs" ] || { echo "train_run $out: give --epochs" >&2; return 2; }
  # finished: its card written and every epoch in its history (an averaged run writes the card at its end)
  if [ -f "$out/model.json" ] && [ -f "$out/history.json" ] && python - "$out/history.json" "$epochs" <<'PY'
import json, sys
sys.exit(0 if len(json.load(open(sys.argv[1]))) >= int(sys.argv[2]) else 1)
PY
  then echo "$out: done"; return; fi
  local resume=()
  [ -f "$out/last.pt" ] && resume=(--resume)
  python -m seg.cli.train --out "$out" "$@" "${resume[@]}" 2>&1 | tee -a "$out.log"
}
