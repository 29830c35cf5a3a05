"""Figures live in benchmarks/RESULTS.md only: the README and docs/ name its sections instead of
quoting times that drift as the code changes, and every section they name exists. (docs/training.md
is the training report: its figures are the runs it reports, not benchmarks.)"""

import re

from conftest import ROOT

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
# A time with its unit, not part of a name (FCN-32s) or a range's second half.
TIME = re.compile(r"(?<![\w.,-])\d[\d.,]*(?:-\d[\d.,]*)? ?(?:ms|s|seconds|minutes)\b")
# Times that are not measurements but rules or inputs, each with the reason it stays.
CONSTRAINTS = {
    ("docs/deploy.md", "5 s"): "the pace of the slow-header attack the guard is tested with",
    ("docs/testing.md", "10 minutes"): "pytest-timeout's limit per test (pyproject.toml)",
}


def documents():
    yield ROOT / "README.md"
    yield from (p for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "training.md")


def prose(path):
    """The text outside code blocks (commands and their flags are not figures)."""
    return re.sub(r"```.*?```", "", path.read_text(), flags=re.S)


def sections() -> list[str]:
    return [line[3:].strip() for line in RESULTS.read_text().splitlines() if line.startswith("## ")]


def test_no_doc_quotes_a_time_that_results_md_holds():
    quoted = []
    for path in documents():
        name = path.relative_to(ROOT).as_posix()
        for figure in TIME.findall(prose(path)):
            if (name, figure) not in CONSTRAINTS:
                quoted.append(f"{name}: {figure}")
    assert not quoted, f"name the RESULTS.md section instead of quoting: {quoted}"


def test_every_results_section_a_doc_or_comment_names_exists():
    titles = sections()
    named = []
    sources = [*documents(), *sorted((ROOT / "ui").rglob("*.py")), *sorted((ROOT / "seg").rglob("*.py"))]
    for path in sources:
        text = " ".join(path.read_text().split())  # a name may wrap over lines (and comment marks)
        text = text.replace("# ", "")
        for mention in re.finditer(r"RESULTS\.md\)?,? ((?:\"[^\"]+\"(?:,| and| or)? ?)+)", text):
            for title in re.findall(r"\"([^\"]+)\"", mention.group(1)):
                named.append(title)
                assert any(t.startswith(title) for t in titles), f"{path.name} names {title!r}: not in {titles}"
    assert len(named) >= 5, named  # the docs and comments above do name sections
