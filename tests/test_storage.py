"""Disk budgets: files counted per upload and per address as the form streams, and a budget of bytes
and files for everything kept, the oldest evicted first. A hostile client made 19,000 upload folders
in 8 s for 3 MB of its byte quota (1,000 ten-byte files a form)."""

import os
import re
import time
import uuid

import httpx
import pytest

from ui.files import Outputs
from ui.limits import LIMITS


def form(count: int, start: int = 0, run: str = "") -> list[tuple[str, tuple[str, bytes]]]:
    """`count` small files, each of its own content (numbered from `start`, after `run`): Gradio stores
    an upload in a folder named by its content's hash, so files alike, in this run or an earlier one
    (its upload folder outlives a run), would land where one already is."""
    return [("files", (f"f{i}.txt", b"%s%010d" % (run.encode(), i))) for i in range(start, start + count)]


def uploads_in(folder: str) -> int:
    return sum(len(names) for _, _, names in os.walk(folder))


def test_a_form_of_many_small_files_is_stopped_as_it_streams(server):
    from gradio.utils import get_upload_folder

    before = uploads_in(get_upload_folder())
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.21"), timeout=30) as client:
        answer = client.post(server + "gradio_api/upload", files=form(1000))
    assert answer.status_code == 413 and f"an upload may carry {LIMITS.files_per_upload} files" in answer.text
    written = uploads_in(get_upload_folder()) - before
    print(f"a form of 1,000 files: refused, {written} written")
    assert written <= LIMITS.files_per_upload + 1  # what streamed before the count passed the cap


@pytest.mark.slow
def test_an_address_past_its_file_quota_is_told_when_to_retry(server, app):
    """Forms of four files from one address until refused: exactly `files_per_address` go through, then
    429 whose Retry-After is the wait its message gives; each accepted file is counted on the disk's budget.
    The app's clock sweeps on its own meanwhile, and an entry can leave the disk mid-test (it aged past the
    hour, or Gradio's own cache deletion took it, or some of its files): what left is taken off the count
    the test began with."""
    app.ctx.outputs.sweep()  # first what has aged (Gradio's upload folder outlives a run)
    present = entries(app.ctx.outputs)
    before = app.ctx.outputs.counted()[1]
    accepted, run = 0, uuid.uuid4().hex
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.22"), timeout=30) as client:
        for _ in range(LIMITS.files_per_address // LIMITS.files_per_upload + 2):
            answer = client.post(server + "gradio_api/upload", files=form(LIMITS.files_per_upload, accepted, run))
            if answer.status_code != 200:
                break
            accepted += LIMITS.files_per_upload
    assert answer.status_code == 429 and accepted == LIMITS.files_per_address, (answer.status_code, accepted)
    assert f"uploaded {LIMITS.files_per_address:,} files" in answer.text  # refused before it streams
    wait = int(re.search(r"retry in about (\d+) s", answer.text).group(1))
    assert int(answer.headers["retry-after"]) == wait and 0 < wait <= LIMITS.bytes_window_seconds + 1
    left = gone(present, app.ctx.outputs)
    assert app.ctx.outputs.counted()[1] - (before - left) >= accepted, (before, left)
    app.ctx.outputs.sweep()  # and a sweep, which counts the disk again, finds them all there
    left = gone(present, app.ctx.outputs)
    assert app.ctx.outputs.counted()[1] - (before - left) >= accepted, (before, left)


def entries(outputs: Outputs) -> dict[str, int]:
    """The files of each entry a sweep measures, by its path."""
    return {entry.path: entry.files for entry in outputs.entries()}


def gone(present: dict[str, int], outputs: Outputs) -> int:
    """How many of the files in `present` (an `entries` listing) have left the disk since."""
    now = entries(outputs)
    return sum(max(0, files - now.get(path, 0)) for path, files in present.items())


def entry(root, name: str, size: int, age: float, files: int = 1):
    folder = root / name
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"{i}.bin").write_bytes(b"x" * (size // files))
    os.utime(folder, (time.time() - age,) * 2)
    return folder


def test_the_disk_budget_evicts_the_oldest_first(tmp_path):
    uploads, out = tmp_path / "uploads", tmp_path / "out"
    outputs = Outputs(max_age=3600, root=out, kept=(uploads,), budget=(1000, 6), sweep_every=3600)
    oldest = entry(uploads, "a", 400, age=300)
    older = entry(out, "b", 400, age=200)
    newer = entry(uploads, "c", 400, age=100)  # 1,200 bytes: 200 past the budget
    assert outputs.sweep() == 1 and not oldest.exists() and older.exists() and newer.exists()
    assert outputs.counted() == (800, 2)
    many = entry(uploads, "d", 50, age=10, files=5)  # 7 files: past the budget of 6 by count
    outputs.added(50, 5)  # the upload is told; the estimate passes the budget, so it sweeps at once
    assert not older.exists() and newer.exists() and many.exists() and outputs.counted() == (450, 6)
    stale = entry(out, "e", 10, age=7200)  # past max_age: deleted whatever the budget
    assert outputs.sweep() == 1 and not stale.exists()
    # Gradio's copy of an example, served while the app runs: never deleted, by age or by budget
    example = entry(uploads, "f", 2000, age=7200)
    outputs.pinned = lambda: {str(example / "0.bin")}
    assert outputs.sweep() == 0 and example.exists() and newer.exists()
    assert outputs.counted() == (450, 6)  # kept whatever the budget, so not counted against it


def test_old_output_folders_are_deleted(tmp_path):
    uploads = tmp_path / "uploads"
    (uploads / "3f2a").mkdir(parents=True)  # an upload's own folder: swept too (Gradio's cache deletion may be later)
    (uploads / "3f2a" / "photo.png").write_bytes(b"x")
    (uploads / "tmpab12cd").write_bytes(b"")  # a loose temporary file the upload route left behind
    (uploads / "tmpnew").write_bytes(b"")
    (uploads / "9e1b").mkdir()
    (uploads / "9e1b" / "recent.png").write_bytes(b"x")
    outputs = Outputs(max_age=60, root=tmp_path / "out", kept=(uploads,), sweep_every=0)
    old, recent = outputs.new("a"), outputs.new("b")
    (old / "mask.png").write_bytes(b"x")
    for stale in (old, uploads / "tmpab12cd", uploads / "3f2a"):
        os.utime(stale, (time.time() - 120,) * 2)
    outputs.new("c")
    assert not old.exists() and recent.exists()
    assert not (uploads / "tmpab12cd").exists() and (uploads / "tmpnew").exists()
    assert not (uploads / "3f2a").exists() and (uploads / "9e1b" / "recent.png").exists()
    # a busy server sweeps once a minute, not at every request: the first `new` sweeps, the next waits
    calm = Outputs(max_age=60, root=tmp_path / "calm", sweep_every=3600)
    first = calm.new("a")
    os.utime(first, (time.time() - 120,) * 2)
    calm.new("b")
    assert first.exists()
    assert calm.sweep() == 1 and not first.exists()  # it was old enough: only the schedule kept it


def test_an_idle_server_deletes_what_has_aged_too(tmp_path):
    """Sweeps follow new folders, which an idle server never makes: its clock sweeps as well."""
    import threading

    outputs = Outputs(max_age=60, root=tmp_path / "out", sweep_every=0.2)
    made = outputs.new("a")
    os.utime(made, (time.time() - 120,) * 2)  # aged past max_age, and no request comes after it
    stop = threading.Event()
    thread = outputs.keep_sweeping(stop)
    try:
        for _ in range(50):
            if not made.exists():
                break
            time.sleep(0.1)
        assert not made.exists()
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()  # the app's closing stops it


def test_the_files_gradio_keeps_for_the_page_are_never_swept(app):
    """Gradio serves its copies of the examples (and the leaderboard's chart) from its cache for as long
    as it runs: the sweeps of the upload folder leave them, however old."""
    from ui import gradio_private

    kept = gradio_private.kept_files(app.demo)
    assert kept and app.ctx.outputs.pinned() == kept
    for path in kept:
        os.utime(os.path.dirname(path), (time.time() - 2 * LIMITS.keep_files_seconds,) * 2)
    app.ctx.outputs.sweep()
    assert all(os.path.exists(path) for path in kept)


def test_an_upload_stored_while_a_sweep_reads_the_disk_stays_counted(tmp_path):
    """The sweep's scan may miss an upload that lands while it reads the folders; that upload's count
    must outlive the sweep, or a burst during sweeps would go uncounted and pass the budget."""
    uploads = tmp_path / "uploads"
    outputs = Outputs(max_age=3600, root=tmp_path / "out", kept=(uploads,), budget=(10_000, 100), sweep_every=3600)
    entry(uploads, "a", 100, age=10)

    def upload_during_the_scan():  # `pinned` is read as the sweep starts: an upload arrives then
        outputs.added(40, 4)
        return set()

    outputs.pinned = upload_during_the_scan
    outputs.sweep()
    assert outputs.counted()[1] >= 1 + 4, outputs.counted()
