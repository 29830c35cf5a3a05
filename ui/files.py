"""Temporary folders for what the app hands out (label PNGs, masks, metrics JSON), deleted after a
stated age so that a busy server's disk does not fill. Gradio's own cache (uploads, and the copies
it serves) is emptied on the same schedule by `gr.Blocks(delete_cache=...)`."""

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path


class Outputs:
    """`new()` gives a fresh folder under `root`, and removes the folders older than `max_age` seconds,
    and the loose files older than that directly inside each folder of `loose_in`: Gradio keeps every
    upload in a folder of its own, but its upload route leaves an empty temporary file beside them
    for each file gradio_client sends, which its own cache deletion never sees."""

    def __init__(self, max_age: float, root: str | Path | None = None, *, loose_in: tuple[str | Path, ...] = (),
                 sweep_every: float = 60):
        """sweep_every: at most one sweep in this many seconds. A sweep reads every folder, and a busy
        server makes thousands an hour: sweeping at every `new()` cost 5 ms of each SAM click here."""
        self.root = Path(root or tempfile.mkdtemp(prefix="seg-outputs-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age, self.loose_in, self.sweep_every = max_age, tuple(Path(p) for p in loose_in), sweep_every
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def sweep(self) -> int:
        """Delete what is older than `max_age`; returns how many folders and files."""
        cutoff, removed = time.time() - self.max_age, 0
        with self._lock:
            for folder in self.root.iterdir():
                try:
                    if folder.stat().st_mtime < cutoff:
                        shutil.rmtree(folder, ignore_errors=True)
                        removed += 1
                except FileNotFoundError:
                    continue
            for folder in self.loose_in:
                for entry in os.scandir(folder) if folder.is_dir() else ():
                    try:
                        if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                            os.remove(entry.path)
                            removed += 1
                    except FileNotFoundError:
                        continue
        return removed

    def new(self, prefix: str) -> Path:
        """A fresh folder; first, once `sweep_every` seconds have passed since the last, a sweep."""
        with self._lock:
            now = time.monotonic()
            due = now >= self._next_sweep
            if due:
                self._next_sweep = now + self.sweep_every
        if due:
            self.sweep()
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.root))
