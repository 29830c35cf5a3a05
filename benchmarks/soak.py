"""Soak test: bounded mixed traffic on loopback for a long time, the server's memory and disk
sampled each minute.

    python benchmarks/soak.py [--minutes 30] [--clients 3] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM checkpoint made here) with files
kept for 5 minutes instead of an hour (SEG_KEEP_FILES_SECONDS), so that the cleanup shows within
the run. Each client sends, with a short pause between requests: /segment, /sam_prompt and
/sam_objects on many distinct images (SAM's embedding cache of 8 must evict), /score, and requests
the app must refuse (a forged server path, an oversized body, a bad prompt). Memory must level off:
the models are loaded once, the embedding cache holds at most 8 x 4 MiB, nothing else grows.

RSS sampled while requests run includes what the jobs in flight hold for a moment (hundreds of MiB
for SAM on a large photo), so the verdict compares the server at rest: after five minutes and at the
end, the clients pause, the jobs in flight finish, and RSS is read then.
"""

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from app_speed import app_env, random_sam_checkpoint, street  # noqa: E402
from load_test import current_rss_mib, start_app  # noqa: E402
from report import publish  # noqa: E402

PORT = 7985
KEEP_SECONDS = 300


def outlived(keep: float) -> float:
    """The longest a file may stay when files are kept `keep` seconds: Gradio's cache deletion runs
    every `keep` seconds and takes what is older than `keep`; the app's sweep runs at most a minute
    apart. A file older than this was missed by both."""
    return 2 * keep + 60


REST_SECONDS = 75  # longer than the 60 s between the server's malloc_trim calls
GROWTH_MIB = 150  # the most the resting server may grow from minute 5 to the end: leaks show as growth


# Files the app serves for as long as it runs (Gradio's copies of the examples, the leaderboard's chart):
# never deleted by design, so never counted as outliving their time.
PINNED = {p.name for folder in ("examples", "leaderboard") for p in (ROOT / folder).iterdir()}


def folder_usage(folder: Path, *, older_than: float) -> tuple[int, float, list[str]]:
    """(files, MiB, the files last written more than `older_than` seconds ago, the app's pinned copies
    left out) under `folder`, which the server is deleting from as we count."""
    count, size, stale = 0, 0, []
    now = time.time()
    for root, _, names in os.walk(folder):  # os.walk skips a folder that vanishes under it
        for name in names:
            path = os.path.join(root, name)
            try:
                status = os.stat(path)
            except FileNotFoundError:
                continue
            size += status.st_size
            count += 1
            if now - status.st_mtime > older_than and name not in PINNED:
                stale.append(os.path.relpath(path, folder))
    return count, size / 2**20, stale


def client(url: str, photos: list[Path], truth: Path, stop: threading.Event, pause: threading.Event, seed: int,
           stats: dict) -> None:
    from gradio_client import Client, handle_file

    rng = random.Random(seed)
    api = Client(url, verbose=False)
    segment = next(i for i, d in enumerate(httpx.get(url + "config", timeout=30).json()["dependencies"])
                   if d.get("api_name") == "segment")
    while not stop.is_set():
        if pause.is_set():
            time.sleep(0.5)
            continue
        kind = rng.choice(["segment", "sam_prompt", "sam_objects", "score", "refused"])
        photo = handle_file(str(rng.choice(photos)))
        x, y = rng.randint(0, 479), rng.randint(0, 359)
        started = time.perf_counter()
        try:
            if kind == "segment":
                api.predict(photo, rng.choice(["fcn8s", "unet", "deeplabv3"]), api_name="/segment")
            elif kind == "sam_prompt":
                api.predict(photo, f"[[{x}, {y}]]", "[1]", "", api_name="/sam_prompt")
            elif kind == "sam_objects":
                box = [10, 10, max(x, 20), max(y, 20)]
                objects = f'[{{"points": [[{x}, {y}]], "labels": [1]}}, {{"box": {box}}}]'
                api.predict(photo, objects, api_name="/sam_objects")
            elif kind == "score":
                api.predict(handle_file(str(truth)), handle_file(str(truth)), api_name="/score")
            else:  # what a hostile client sends: each must be refused, quickly
                forged = {"data": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, "fcn8s"],
                          "fn_index": segment, "session_hash": "soak"}
                assert httpx.post(url + "gradio_api/queue/join", json=forged, timeout=30).status_code == 400
                padded = {"data": ["x" * (2 << 20)], "fn_index": segment, "session_hash": "soak"}
                assert httpx.post(url + "gradio_api/queue/join", json=padded, timeout=30).status_code == 413
                try:
                    api.predict(photo, "[[1e9, 5]]", "[1]", "", api_name="/sam_prompt")
                    raise AssertionError("a point outside the image was accepted")
                except Exception as error:  # the expected refusal
                    if "outside" not in str(error):
                        raise
            stats[kind].append(1000 * (time.perf_counter() - started))
        except Exception as error:  # every unexpected failure is counted and shown
            stats["failures"].append(f"{kind}: {str(error)[:200]}")
            print(f"failure: {stats['failures'][-1]}", file=sys.stderr, flush=True)
        time.sleep(rng.uniform(0.2, 0.6))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--keep-seconds", type=int, default=KEEP_SECONDS,
                        help=f"the app's SEG_KEEP_FILES_SECONDS for the run (default {KEEP_SECONDS}; 60 or more)")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = []
        for i in range(args.images):
            picture = street((360, 480))
            picture[: 10 + i, : 10 + i] = (i * 37) % 256  # distinct content: distinct embeddings
            # JPEGs, as photos are (62 KB here against 400 KB as PNG): the clients share one address, and
            # PNGs sent this fast passed its byte quota (bytes_per_address) within ten minutes
            Image.fromarray(picture).save(tmp / f"photo_{i}.jpg", quality=90)
            photos.append(tmp / f"photo_{i}.jpg")
        truth = tmp / "truth.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 11, (360, 480), dtype=np.uint8)).save(truth)
        uploads = tmp / "gradio"  # the server's upload folder and cache, on its own for this run
        outputs = tmp / "outputs"
        env = app_env(random_sam_checkpoint(tmp), PORT, GRADIO_TEMP_DIR=str(uploads),
                      SEG_KEEP_FILES_SECONDS=str(args.keep_seconds), SEG_OUTPUTS_DIR=str(outputs))
        server = start_app(env)
        url = f"http://127.0.0.1:{PORT}/"
        stats: dict[str, list] = defaultdict(list)
        stop, pause = threading.Event(), threading.Event()
        threads = [threading.Thread(target=client, args=(url, photos, truth, stop, pause, seed, stats))
                   for seed in range(args.clients)]
        samples, at_rest, stale = [], {}, {}

        def rest(minute: int) -> None:
            pause.set()
            time.sleep(REST_SECONDS)  # every job in flight ends (the slowest take a few seconds)
            at_rest[minute] = current_rss_mib(server.pid)
            print(f"minute {minute}: at rest, RSS {at_rest[minute]:.0f} MiB", flush=True)
            pause.clear()

        try:
            started = time.time()
            for thread in threads:
                thread.start()
            minute = 0
            while minute < args.minutes:
                time.sleep(max(0.0, started + 60 * (minute + 1) - time.time()))
                minute += 1
                files, mib, old = folder_usage(uploads, older_than=outlived(args.keep_seconds))
                out_files, out_mib, out_old = folder_usage(outputs, older_than=outlived(args.keep_seconds))
                stale.update({f"uploads/{name}": minute for name in old})
                stale.update({f"outputs/{name}": minute for name in out_old})
                requests = sum(len(v) for k, v in stats.items() if k != "failures")
                samples.append((minute, current_rss_mib(server.pid), files + out_files, mib + out_mib, requests))
                print(f"minute {minute}: RSS {samples[-1][1]:.0f} MiB, {files + out_files} files "
                      f"({mib + out_mib:.1f} MiB), {requests} requests, {len(stats['failures'])} failures", flush=True)
                if minute == 5 or minute >= args.minutes:
                    rest(minute)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
            server.terminate()
            server.wait(timeout=30)
    rss = [s[1] for s in samples]
    rows = ["| minute | server RSS (MiB) | files kept | their size (MiB) | requests so far |",
            "| ---: | ---: | ---: | ---: | ---: |"]
    rows += [f"| {m} | {r:.0f} | {f} | {s:.1f} | {n} |" for m, r, f, s, n in samples
             if m in (1, 2, 3, 5) or m % 5 == 0 or m == samples[-1][0]]
    latency = ", ".join(f"/{k} {np.percentile(v, 50):.0f} ms" for k, v in stats.items() if k != "failures" and v)
    first, last = at_rest.get(5, float("nan")), at_rest.get(samples[-1][0], float("nan"))
    rows += ["", f"At rest (clients paused {REST_SECONDS} s, no job in flight): RSS {first:.0f} MiB after 5 minutes, "
             f"{last:.0f} MiB at the end. Under load: {min(rss[4:] or rss):.0f} to {max(rss[4:] or rss):.0f} MiB after "
             f"5 minutes (the jobs in flight included). Models load once; SAM's embedding cache holds at most "
             "8 x 4 MiB. "
             f"Files are kept {args.keep_seconds} s; files held at most {max(s[2] for s in samples)}. "
             f"p50: {latency}. **{len(stats['failures'])} unexpected failures.**"]
    grew = last - first  # NaN (a failed run) compares False: then the failures decide
    verdict = "met" if grew <= GROWTH_MIB else "NOT met"
    rows += ["", f"Memory at rest grew by {grew:.0f} MiB from minute 5 to the end (criterion: at most "
             f"{GROWTH_MIB} MiB): **{verdict}**."]
    kept_verdict = "met" if not stale else "NOT met"
    rows += ["", f"Files that outlived {outlived(args.keep_seconds):.0f} s (twice the keeping time and a sweep's "
             f"interval): {len(stale)} (criterion: none): **{kept_verdict}**."]
    rows += [f"- outlived: {name} (seen at minute {minute})" for name, minute in sorted(stale.items())[:10]]
    rows += [f"- failure: {f}" for f in stats["failures"][:5]]
    publish(f"Soak: {args.minutes:g} minutes of mixed traffic on loopback",
            f"{args.clients} clients, a request every 0.2-0.6 s each (/segment, /sam_prompt and /sam_objects on "
            f"{args.images} distinct 360x480 JPEGs, /score, and requests that must be refused); server RSS, and the "
            "files in its upload folder and outputs, sampled each minute; the server trims its heap each minute.", rows,
            args.markdown)
    return 1 if stats["failures"] or stale or not grew <= GROWTH_MIB else 0


if __name__ == "__main__":
    sys.exit(main())
