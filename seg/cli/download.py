"""Fetch CamVid (SegNet layout: train/, trainannot/, val/, valannot/, test/, testannot/).

    python -m seg.cli.download --out data/camvid          # then: export SEG_CAMVID_DIR=data/camvid

The source is the SegNet tutorial's repository (CC BY-NC 4.0: personal and research use).
"""

import argparse
from pathlib import Path

from ..data.camvid import ENV_VAR, SOURCE_URL, download_camvid
from .common import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg.cli.download", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder to create the dataset in")
    p.add_argument("--url", default=SOURCE_URL,
                   help="zip archive holding CamVid/<split>/*.png (default: the SegNet tutorial's)")
    p.add_argument("--sha256", help="expected sha256 of the archive; a mismatch keeps nothing")
    args = p.parse_args(argv)
    out = download_camvid(args.out, url=args.url, sha256=args.sha256)
    counts = {d.name: len(list(d.glob("*.png"))) for d in sorted(out.iterdir()) if d.is_dir()}
    print(f"CamVid in {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"use it with --data-dir {out} or `export {ENV_VAR}={out}`")
    return 0


if __name__ == "__main__":
    run(main)
