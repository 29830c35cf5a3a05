"""How every benchmark reports: a titled section with the machine and date, printed and written to RESULTS.md."""

import datetime
from pathlib import Path

from seg import system


def publish(title: str, notes: str, rows: list[str], markdown: Path | None, *, new_file: bool = False) -> None:
    """Print the section; with `markdown`, append it there (`new_file`: start the file afresh)."""
    section = (f"## {title}\n\nMachine: {system.describe()}; {datetime.date.today().isoformat()}. {notes}\n\n"
               + "\n".join(rows) + "\n")
    print("\n" + section)
    if markdown:
        if new_file:
            markdown.write_text("# Benchmark results\n\nRegenerate with `benchmarks/run.sh`.\n")
        with open(markdown, "a") as f:
            f.write("\n" + section)
