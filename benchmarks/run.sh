#!/usr/bin/env bash
# Write benchmarks/RESULTS.md whole: every benchmark, on this machine, one after another (no other
# load), into a new file that replaces the old one only when each of them has written its section.
# A benchmark that misses its target still writes its section (the target and the figure are in
# it): the run goes on, and ends by naming it and exiting 1. One that writes no section (it broke)
# stops the run, and RESULTS.md stays as it was. About 55 minutes on 2 cores (sam_browser.py about
# 11, the soak 30). Commit first: each section names the commit.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=$(mktemp --suffix=.md)
trap 'rm -f "$OUT"' EXIT
rm -f "$OUT"  # the first benchmark starts it with its header
missed=()

sections() { if [ -f "$OUT" ]; then grep -c '^## ' "$OUT"; else echo 0; fi; }

bench() {  # bench SCRIPT [ARGS...]: run one, which appends its section to $OUT
    local before
    before=$(sections)
    python "$@" --markdown "$OUT" || missed+=("$1")
    if [ "$(sections)" -le "$before" ]; then
        echo "$1 wrote no section: benchmarks/RESULTS.md is left as it was" >&2
        exit 1
    fi
}

bench benchmarks/metrics_speed.py
bench benchmarks/model_speed.py
bench benchmarks/fast_budget.py
bench benchmarks/pretrained_speed.py
bench benchmarks/sam_family.py               # about 5 minutes (SAM 3 reads a photo in about half a minute)
bench benchmarks/app_speed.py
bench benchmarks/load_test.py
bench benchmarks/warm_start.py
bench benchmarks/sam_first_click.py
bench benchmarks/fair_queue.py
bench benchmarks/crowd_queue.py             # about 5 minutes (measured alone at 858a0bc)
bench benchmarks/sam_server_click.py
bench benchmarks/sam_api_click.py
bench benchmarks/sam_everything.py
bench benchmarks/refine_speed.py
bench benchmarks/sam_browser.py             # about 11 minutes
bench benchmarks/soak.py --minutes 30       # half an hour
cp "$OUT" benchmarks/RESULTS.md
echo "benchmarks/RESULTS.md written"
if [ ${#missed[@]} -gt 0 ]; then
    echo "missed their targets (see their sections): ${missed[*]}" >&2
    exit 1
fi
