"""How every benchmark reports: a titled section with the machine and date, printed and written to RESULTS.md."""

import datetime
from pathlib import Path

from seg import system

HEADER = "# Benchmark results\n\nRegenerate with `benchmarks/run.sh`.\n"


def publish(title: str, notes: str, rows: list[str], markdown: Path | None, *, new_file: bool = False) -> None:
    """Print the section; with `markdown`, write it there in place of an older section of the same
    title, else at the end (`new_file`: start the file afresh)."""
    section = (f"## {title}\n\nMachine: {system.describe()}; {datetime.date.today().isoformat()}. {notes}\n\n"
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
