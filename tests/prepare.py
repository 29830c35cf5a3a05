"""What the suite needs besides the virtual environment, installed once: Debian's chromium (for the
real-browser tests) and onnxruntime-web at the pinned version (the browser decoder's runtime, served
by the app in the tests, never the CDN). `.ci/run` and the README's test command run it first:

    python tests/prepare.py

The fixtures call the same functions, so a test run on its own still finds or installs what it needs;
each says what failed and how to install it by hand. The unit tier (`python -m pytest -m unit`) needs
neither."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
ORT_WEB_PREFIX = ROOT / ".ort-web"  # ignored by git


class Missing(RuntimeError):
    """A tool the suite needs could not be installed; the message says how to install it by hand."""


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing (never Playwright's own download)."""
    if CHROMIUM.is_file():
        return CHROMIUM
    if shutil.which("apt-get") is None:
        raise Missing(f"no {CHROMIUM} and no apt-get to install it: `apt-get install -y chromium`")
    done = None
    for command in (["apt-get", "install", "-y", "chromium"], ["apt-get", "update"],
                    ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if done.returncode == 0 and command[1] == "install":
            break
    if not CHROMIUM.is_file():
        raise Missing(f"`apt-get install -y chromium` did not provide {CHROMIUM}:\n{done.stderr[-2000:]}")
    return CHROMIUM


def ensure_ort_web() -> Path:
    """onnxruntime-web's dist folder at the version the app pins, installed from npm into .ort-web/."""
    sys.path.insert(0, str(ROOT))
    from ui.tabs.sam.browser import ORT_WEB_SCRIPT, ORT_WEB_VERSION

    dist = ORT_WEB_PREFIX / "node_modules" / "onnxruntime-web" / "dist"
    package = dist.parent / "package.json"
    if package.is_file() and f'"version": "{ORT_WEB_VERSION}"' in package.read_text() and \
            (dist / ORT_WEB_SCRIPT).is_file():
        return dist
    if shutil.which("npm") is None:
        raise Missing(f"npm is needed to install onnxruntime-web@{ORT_WEB_VERSION} (apt-get install -y npm)")
    done = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(ORT_WEB_PREFIX),
                           f"onnxruntime-web@{ORT_WEB_VERSION}"], capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not (dist / ORT_WEB_SCRIPT).is_file():
        raise Missing(f"npm install onnxruntime-web@{ORT_WEB_VERSION} failed:\n{done.stderr[-2000:]}")
    return dist


def main() -> int:
    for name, ensure in (("chromium", ensure_chromium), ("onnxruntime-web", ensure_ort_web)):
        try:
            print(f"{name}: {ensure()}")
        except Missing as error:
            print(f"{name}: {error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
