"""What the app keeps on disk, and for how long: temporary folders for what it hands out (label PNGs,
masks, metrics JSON), and Gradio's uploads beside them, deleted after a stated age and held to a
budget of bytes and of files, the oldest evicted first, so that a busy server's disk does not fill
and its sweeps stay short. Gradio's own cache (uploads, and the copies it serves) is also emptied on
the age schedule by `gr.Blocks(delete_cache=...)`."""

import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

# Unicode's bidirectional controls: U+202E turns "photo\u202egnp.exe" into "photoexe.png" on screen
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def named_after(path: str | os.PathLike, *, default: str = "image") -> str:
    """The stem of an uploaded file's name, for the names of what we hand out: without bidirectional
    controls, so a download cannot show a false extension; `default` when nothing is left."""
    return _BIDI.sub("", Path(path).stem).strip() or default


class Entry(NamedTuple):
    """One folder (or loose file) directly inside a kept folder: an upload, or one request's results."""

    path: str
    made: float  # its own modification time: when it was made, or last had a file added
    size: int  # bytes
    files: int


def measure(path: str) -> Entry | None:
    """The entry at `path`, walked; None when it vanished meanwhile."""
    try:
        stat = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not os.path.isdir(path):
        return Entry(path, stat.st_mtime, stat.st_size, 1)
    size, files = 0, 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                size, files = size + os.stat(os.path.join(folder, name), follow_symlinks=False).st_size, files + 1
            except FileNotFoundError:
                continue
    return Entry(path, stat.st_mtime, size, max(files, 1))  # an empty folder still costs an inode


class Outputs:
    """`new()` gives a fresh folder under `root`. Sweeps remove the folders older than `max_age`
    seconds, then, oldest first, whatever takes the folders under `root` and `kept` (Gradio's upload
    folder) past `budget` (bytes, files). Gradio keeps every upload in a folder of its own, and its
    upload route leaves an empty temporary file beside them for each file gradio_client sends, which
    its own cache deletion never sees: those are loose entries of `kept`, swept the same way."""

    def __init__(self, max_age: float, root: str | Path | None = None, *, kept: tuple[str | Path, ...] = (),
                 budget: tuple[int, int] | None = None, sweep_every: float = 60,
                 pinned: Callable[[], set[str]] = set):
        """sweep_every: at most one scheduled sweep in this many seconds. A sweep reads every folder, and
        a busy server makes thousands an hour: sweeping at every `new()` cost 5 ms of each SAM click here.
        pinned: the files never deleted (Gradio's copies of the examples, which it serves while it runs);
        an entry holding one is left whole."""
        self.root = Path(root or tempfile.mkdtemp(prefix="seg-outputs-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age, self.kept, self.sweep_every = max_age, tuple(Path(p) for p in kept), sweep_every
        self.budget, self.pinned = budget, pinned
        self._lock = threading.Lock()  # one sweep at a time
        self._counting = threading.Lock()  # `_since`: uploads count into it while a sweep reads the disk
        self._next_sweep = 0.0
        self._since = [0, 0]  # bytes and files added since the last sweep's count
        self.held = (0, 0)  # bytes and files held after the last sweep

    def sweep(self) -> int:
        """Delete what is older than `max_age`, then the oldest entries past the budget; returns how
        many entries were deleted. One sweep at a time: a second caller returns 0 at once."""
        if not self._lock.acquire(blocking=False):
            return 0
        try:
            with self._counting:  # what is added from here on may be missed by the scan: it stays counted
                before = tuple(self._since)
            cutoff, removed, entries = time.time() - self.max_age, 0, []
            holders = set()  # the entries (directly inside a kept folder) that hold a pinned file
            for path in map(os.path.realpath, self.pinned()):
                for folder in map(os.path.realpath, (self.root, *self.kept)):
                    if path.startswith(folder + os.sep):
                        holders.add(os.path.join(folder, os.path.relpath(path, folder).split(os.sep)[0]))
            for entry in self.entries(skip=holders):
                if entry.made < cutoff:
                    removed += remove(entry.path)
                else:
                    entries.append(entry)
            size, files = sum(e.size for e in entries), sum(e.files for e in entries)
            if self.budget is not None:
                for entry in sorted(entries, key=lambda e: e.made):  # oldest first
                    if size <= self.budget[0] and files <= self.budget[1]:
                        break
                    removed += remove(entry.path)
                    size, files = size - entry.size, files - entry.files
            with self._counting:
                self.held = (size, files)
                self._since = [self._since[0] - before[0], self._since[1] - before[1]]
            return removed
        finally:
            self._lock.release()

    def entries(self, skip: set[str] = frozenset()) -> Iterator[Entry]:
        """Every entry directly inside `root` and the kept folders, measured, but those whose real path is
        in `skip` (not walked); one that vanishes meanwhile is left out."""
        for folder in (self.root, *self.kept):
            for item in os.scandir(folder) if folder.is_dir() else ():
                if os.path.realpath(item.path) not in skip and (entry := measure(item.path)) is not None:
                    yield entry

    def counted(self) -> tuple[int, int]:
        """Bytes and files on disk as the last sweep counted them, with those added since."""
        with self._counting:
            return self.held[0] + self._since[0], self.held[1] + self._since[1]

    def added(self, size: int, files: int) -> None:
        """Count `files` files of `size` bytes just stored under a kept folder (an upload); sweep now when
        they could take the disk past its budget, so a burst between scheduled sweeps cannot fill it."""
        with self._counting:
            self._since[0] += size
            self._since[1] += files
        if self.budget is not None and (self.held[0] + self._since[0] > self.budget[0]
                                        or self.held[1] + self._since[1] > self.budget[1]):
            self.sweep()

    def keep_sweeping(self, stop: threading.Event) -> threading.Thread:
        """Sweep every `sweep_every` seconds until `stop` is set, in a thread of its own: an idle server
        deletes what has aged too (sweeps otherwise follow `new()`, which an idle server never calls)."""
        def run():
            while not stop.wait(self.sweep_every):
                self.sweep()
                self._next_sweep = time.monotonic() + self.sweep_every
        thread = threading.Thread(target=run, name="disk sweep", daemon=True)
        thread.start()
        return thread

    def new(self, prefix: str) -> Path:
        """A fresh folder; first, once `sweep_every` seconds have passed since the last, a sweep."""
        now = time.monotonic()
        due = now >= self._next_sweep
        if due:
            self._next_sweep = now + self.sweep_every
            self.sweep()
        folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.root))
        self.added(0, 1)
        return folder


def remove(path: str) -> int:
    """Delete a folder or file; 1 if something was there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
        return 1
    try:
        os.remove(path)
        return 1
    except FileNotFoundError:
        return 0
