#!/usr/bin/env bash
# Regenerate benchmarks/RESULTS.md: every benchmark, on this machine, one after another (no other load).
set -euo pipefail
cd "$(dirname "$0")/.."
python benchmarks/metrics_speed.py --markdown benchmarks/RESULTS.md
python benchmarks/model_speed.py --markdown benchmarks/RESULTS.md
python benchmarks/pretrained_speed.py --markdown benchmarks/RESULTS.md
python benchmarks/app_speed.py --markdown benchmarks/RESULTS.md
python benchmarks/load_test.py --markdown benchmarks/RESULTS.md
python benchmarks/warm_start.py --markdown benchmarks/RESULTS.md
python benchmarks/sam_first_click.py --markdown benchmarks/RESULTS.md
python benchmarks/fair_queue.py --markdown benchmarks/RESULTS.md
python benchmarks/sam_server_click.py --markdown benchmarks/RESULTS.md
python benchmarks/sam_api_click.py --markdown benchmarks/RESULTS.md
python benchmarks/sam_everything.py --markdown benchmarks/RESULTS.md
python benchmarks/sam_browser.py --markdown benchmarks/RESULTS.md   # about 17 minutes
python benchmarks/soak.py --minutes 30 --markdown benchmarks/RESULTS.md   # half an hour
