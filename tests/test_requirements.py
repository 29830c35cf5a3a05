"""The Space's pre-requirements (CPU builds of torch) pin the same versions as requirements.txt."""

import re

from conftest import ROOT


def pins(path) -> dict[str, str]:
    """{package: version} of the `name==version` lines of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)==([^\s#;]+)", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


def test_the_cpu_builds_pin_the_versions_everything_else_uses():
    cpu, main = pins(ROOT / "pre-requirements.txt"), pins(ROOT / "requirements.txt")
    assert set(cpu) == {"torch", "torchvision"}
    for name, version in cpu.items():
        public, _, local = version.partition("+")
        assert local == "cpu", f"pre-requirements.txt: {name} must be the CPU build (+cpu), got {version}"
        assert main[name] == public, f"{name}: pre-requirements.txt pins {public}, requirements.txt {main[name]}"
    assert "--index-url https://download.pytorch.org/whl/cpu" in (ROOT / "pre-requirements.txt").read_text()
