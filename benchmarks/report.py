"""How every benchmark reports: a titled section with the machine, date and commit, printed and
written to RESULTS.md (which benchmarks/run.sh writes whole, every section from one run)."""

import datetime
import subprocess
from pathlib import Path

from seg import system

HEADER = ("# Benchmark results\n\nWritten whole by `benchmarks/run.sh`: every section below comes from one "
          "run, on the machine, date and commit it names. Edit the benchmarks, not this file.\n")
ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The checkout measured: its short commit, and whether tracked files had changed since."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "commit unknown (not a git checkout)"
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/RESULTS.md").stdout.strip()
    return f"commit {head.stdout.strip()}" + (" with uncommitted changes" if changed else "")


def publish(title: str, notes: str, rows: list[str], markdown: Path | None, *, new_file: bool = False) -> None:
    """Print the section; with `markdown`, write it there in place of an older section of the same
    title, else at the end (`new_file`: start the file afresh)."""
    section = (f"## {title}\n\nMachine: {system.describe()}; {datetime.date.today().isoformat()}; {commit()}. "
               f"{notes}\n\n"
               + "\n".join(rows) + "\n")
    print("\n" + section)
    if markdown:
        text = HEADER if new_file or not markdown.is_file() else markdown.read_text()
        head, *sections = text.split("\n## ")
        sections = ["## " + s.rstrip("\n") + "\n" for s in sections]
        same = [i for i, s in enumerate(sections) if s.startswith(f"## {title}\n")]
        sections = [s for i, s in enumerate(sections) if i not in same[1:]]  # one section per title
        if same:
            sections[same[0]] = section
        else:
            sections.append(section)
        markdown.write_text("\n".join([head.rstrip("\n") + "\n", *sections]))


def target(missed: list[str], what: str, value: float, limit: float, unit: str) -> str:
    """"(target: under `limit` `unit`: met)" for `what`, or MISSED, which is added to `missed`."""
    if value < limit:
        return f"(target: under {limit:g} {unit}: met)"
    missed.append(what)
    return f"(target: under {limit:g} {unit}: **MISSED**)"
