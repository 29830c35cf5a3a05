"""Imports point one way: the library needs torch alone; heavy packages load only in their adapters."""

import subprocess
import sys

import pytest

from conftest import ROOT

CORE = ["seg", "seg.models", "seg.losses", "seg.metrics", "seg.data", "seg.engine", "seg.inference",
        "seg.visualize", "seg.checkpoint", "seg.fetch", "seg.pretrained", "seg.pretrained.label_mapping",
        "seg.postprocess", "seg.charts", "seg.data.ground_truth", "seg.deadline",
        "seg.pretrained.hub_segmenter", "seg.pretrained.segformer", "seg.pretrained.mask2former",
        "seg.explorer", "seg.explorer.zoo", "seg.explorer.semantic", "seg.explorer.compare", "seg.sam.prompts",
        "seg.explorer.export", "seg.explorer.demos"]
HEAVY = ["transformers", "segment_anything", "mobile_sam", "timm", "gradio", "pydensecrf", "scipy", "pandas"]


def test_core_modules_do_not_import_heavy_dependencies():
    code = (f"import importlib, sys\nfor m in {CORE!r}: importlib.import_module(m)\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_each_adapter_imports_only_its_own_dependency():
    code = ("import sys\nimport seg.pretrained.segformer, seg.pretrained.mask2former, seg.sam.model\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"  # imported lazily, on load, not at module import


def test_nothing_in_the_library_imports_the_app():
    for path in (ROOT / "seg").rglob("*.py"):
        text = path.read_text()
        assert "import app" not in text and "from app" not in text and "import gradio" not in text, path
        assert "import ui" not in text and "from ui" not in text, path  # the app's server side, not the library's


def test_only_the_command_lines_read_the_environment():
    """Settings come in as arguments: a module of seg/ reads no environment variable, except a command
    line for its own flags' defaults (and seg.cli.train for torchrun's rank and world size, in main)."""
    import re

    readers = {path.relative_to(ROOT).as_posix() for path in (ROOT / "seg").rglob("*.py")
               if re.search(r"os\.environ|getenv", path.read_text())}
    assert readers and all(name.startswith("seg/cli/") for name in readers), readers
    for name in readers:
        tree = (ROOT / name).read_text()
        lines = [line for line in tree.splitlines() if re.search(r"os\.environ|getenv", line)]
        assert all("add_argument(" in line and re.search(r"default=(Path\()?os\.environ\.get\(", line)
                   or "LOCAL_RANK" in line for line in lines), lines


@pytest.mark.slow
def test_importing_the_app_creates_nothing_and_reads_no_environment(tmp_path):
    """Every module of the app imported with the environment's reads recorded and the temporary
    folder watched: nothing is read, made or scanned until `build(settings)`."""
    modules = ["app", "ui.app", "ui.api", "ui.context", "ui.settings", "ui.guard", "ui.gpu", "ui.gradio_private",
               *sorted(".".join(p.relative_to(ROOT).with_suffix("").parts)
                       for p in (ROOT / "ui" / "tabs").rglob("*.py") if p.stem != "__init__")]
    code = ("import importlib, os, tempfile\n"
            f"tempfile.tempdir = {str(tmp_path)!r}\n"
            "read = []\n"
            "class Watched(dict):\n"
            "    def get(self, key, default=None):\n"
            "        read.append(key)\n"
            "        return super().get(key, default)\n"
            "    def __getitem__(self, key):\n"
            "        read.append(key)\n"
            "        return super().__getitem__(key)\n"
            "import gradio, torch, transformers  # third parties may read their own settings at import\n"
            "os.environ = Watched(os.environ)\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(sorted(k for k in read if k.startswith(('SEG_', 'SPACE'))), os.listdir(tempfile.tempdir))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[] []"


def test_every_file_of_the_app_and_library_fits_a_reader():
    sizes = {path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
             for pattern in ("app.py", "ui/**/*.py", "seg/**/*.py") for path in ROOT.glob(pattern)}
    assert sizes["app.py"] <= 45
    assert {name: n for name, n in sizes.items() if n > 420} == {}


def test_ruff_finds_nothing():
    """The linter as configured in pyproject.toml, over the whole project."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
