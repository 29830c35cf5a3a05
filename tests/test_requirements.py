"""The Space's pre-requirements (CPU builds of torch) pin the same versions as requirements.txt, and
the installable library (pyproject.toml) asks what requirements.txt asks and works outside the repo."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from conftest import ROOT


def requirement_lines(path) -> dict[str, str]:
    """{package: its whole specifier, e.g. ">=1.26" or "==2.14.1"} of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*([<>=!~][^\s#;]*)", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


def pins(path) -> dict[str, str]:
    """{package: version} of the `name==version` lines of a requirements file."""
    return {name: spec[2:] for name, spec in requirement_lines(path).items() if spec.startswith("==")}


def test_the_cpu_builds_pin_the_versions_everything_else_uses():
    cpu, main = pins(ROOT / "pre-requirements.txt"), pins(ROOT / "requirements.txt")
    assert set(cpu) == {"torch", "torchvision"}
    for name, version in cpu.items():
        public, _, local = version.partition("+")
        assert local == "cpu", f"pre-requirements.txt: {name} must be the CPU build (+cpu), got {version}"
        assert main[name] == public, f"{name}: pre-requirements.txt pins {public}, requirements.txt {main[name]}"
    assert "--index-url https://download.pytorch.org/whl/cpu" in (ROOT / "pre-requirements.txt").read_text()


def test_the_installable_library_asks_what_requirements_txt_asks():
    """`pip install -e .` and `pip install -r requirements.txt` install the same versions of what the
    library needs (pyproject.toml lists a subset of requirements.txt: the app's own are not the library's)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = [*project["dependencies"], *(d for extra in project["optional-dependencies"].values() for d in extra)]
    main = requirement_lines(ROOT / "requirements.txt")
    for dependency in listed:
        name, specifier = re.fullmatch(r"([A-Za-z0-9_.-]+)(.*)", dependency).groups()
        pinned = main.get(name.lower())
        assert pinned == specifier, f"{name}: pyproject.toml asks {specifier}, requirements.txt {pinned}"


@pytest.mark.slow
def test_the_library_installed_works_outside_the_repo(tmp_path):
    """The README's library snippet, run from another folder against the library installed from a wheel
    of this checkout: it failed with "No module named 'seg'" anywhere but the repo root."""
    wheels, target, elsewhere, source = (tmp_path / n for n in ("wheels", "site", "elsewhere", "source"))
    elsewhere.mkdir()
    # from a copy of what the build reads: setuptools builds in the source folder (build/, *.egg-info)
    shutil.copytree(ROOT / "seg", source / "seg", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("seg_explorer-*.whl"))
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    snippet = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    for name in re.findall(r'"((?:weights|examples)/[^"]+)"', snippet):  # the repo's files, wherever it runs
        snippet = snippet.replace(f'"{name}"', repr(str(ROOT / name)))
    script = elsewhere / "snippet.py"
    script.write_text("import seg\nprint(seg.__file__)\n" + snippet)
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=elsewhere,
                         env={**os.environ, "PYTHONPATH": str(target)})
    assert ran.returncode == 0, ran.stderr[-2000:]
    where, score = ran.stdout.splitlines()[:2]
    assert where.startswith(str(target)) and re.fullmatch(r"mIoU 0\.\d{3}", score), ran.stdout
    # the wheel holds the library alone: not the app, the tests or the weights
    name, version = wheel.name.split("-")[:2]
    assert {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()} == {"seg", f"{name}-{version}.dist-info"}
