#!/usr/bin/env bash
# Write benchmarks/RESULTS.md whole: every benchmark, on this machine, one after another (no other
# load), into a new file that replaces the old one only when all of them have run. About 85 minutes
# on 2 cores (sam_browser.py about 17, the soak 30). Commit first: each section names the commit.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=$(mktemp --suffix=.md)
trap 'rm -f "$OUT"' EXIT
rm -f "$OUT"  # the first benchmark starts it with its header
python benchmarks/metrics_speed.py --markdown "$OUT"
python benchmarks/model_speed.py --markdown "$OUT"
python benchmarks/pretrained_speed.py --markdown "$OUT"
python benchmarks/app_speed.py --markdown "$OUT"
python benchmarks/load_test.py --markdown "$OUT"
python benchmarks/warm_start.py --markdown "$OUT"
python benchmarks/sam_first_click.py --markdown "$OUT"
python benchmarks/fair_queue.py --markdown "$OUT"
python benchmarks/sam_server_click.py --markdown "$OUT"
python benchmarks/sam_api_click.py --markdown "$OUT"
python benchmarks/sam_everything.py --markdown "$OUT"
python benchmarks/refine_speed.py --markdown "$OUT"
python benchmarks/sam_browser.py --markdown "$OUT"   # about 17 minutes
python benchmarks/soak.py --minutes 30 --markdown "$OUT"   # half an hour
cp "$OUT" benchmarks/RESULTS.md
echo "benchmarks/RESULTS.md written"
