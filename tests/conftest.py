"""Shared fixtures: where CamVid lives, and a small trained checkpoint for the command-line tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def camvid_dir() -> Path:
    """The real CamVid files: $SEG_CAMVID_DIR or ../shared/data/camvid beside the project.

    Missing data fails the test rather than skipping it, so CI can never pass without reading it.
    """
    path = Path(os.environ.get("SEG_CAMVID_DIR", ROOT.parent / "shared" / "data" / "camvid"))
    if not (path / "val").is_dir():
        pytest.fail(f"CamVid not found at {path}: set SEG_CAMVID_DIR or run `python -m seg.download --out DIR`")
    return path


def run_module(*args: str, cwd: Path | None = None, env: dict | None = None, check: bool = True,
               timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m ...` in a fresh interpreter, as a user would (from `cwd`, the project importable)."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd or ROOT, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


# A U-Net recipe on 64x64 synthetic scenes that learns in about fifteen seconds on 2 CPU cores.
TINY_TRAIN = ["--model", "unet", "--width-mult", "0.25", "--synthetic-images", "192", "--image-size", "64", "64",
              "--batch-size", "16", "--lr", "3e-3", "--warmup-steps", "10", "--workers", "0", "--no-progress"]


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory) -> Path:
    """A U-Net trained for two epochs through the real command line."""
    out = tmp_path_factory.mktemp("run")
    run_module("seg.train", *TINY_TRAIN, "--epochs", "2", "--out", str(out))
    return out / "model.safetensors"
