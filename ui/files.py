"""Temporary folders for what the app hands out (label PNGs, masks, metrics JSON), deleted after a
stated age so that a busy server's disk does not fill. Gradio's own cache (uploads, and the copies
it serves) is emptied on the same schedule by `gr.Blocks(delete_cache=...)`."""

import shutil
import tempfile
import threading
import time
from pathlib import Path


class Outputs:
    """`new()` gives a fresh folder under `root`, and removes the folders older than `max_age` seconds."""

    def __init__(self, max_age: float, root: str | Path | None = None):
        self.root = Path(root or tempfile.mkdtemp(prefix="seg-outputs-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age = max_age
        self._lock = threading.Lock()

    def sweep(self) -> int:
        """Delete the folders older than `max_age`; returns how many."""
        cutoff, removed = time.time() - self.max_age, 0
        with self._lock:
            for folder in self.root.iterdir():
                try:
                    if folder.stat().st_mtime < cutoff:
                        shutil.rmtree(folder, ignore_errors=True)
                        removed += 1
                except FileNotFoundError:
                    continue
        return removed

    def new(self, prefix: str) -> Path:
        self.sweep()
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.root))
