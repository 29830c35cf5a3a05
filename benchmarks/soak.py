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
REST_SECONDS = 75  # longer than the 60 s between the server's malloc_trim calls
GROWTH_MIB = 150  # the most the resting server may grow from minute 5 to the end: leaks show as growth


def folder_usage(folder: Path) -> tuple[int, float]:
    """(files, MiB) under `folder`, which the server is deleting from as we count."""
    count, size = 0, 0
    for root, _, names in os.walk(folder):  # os.walk skips a folder that vanishes under it
        for name in names:
            try:
                size += os.stat(os.path.join(root, name)).st_size
                count += 1
            except FileNotFoundError:
                continue
    return count, size / 2**20


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
                objects = f'[{{"points": [[{x}, {y}]], "labels": [1]}}, {{"box": [10, 10, {max(x, 20)}, {max(y, 20)}]}}]'
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
                      SEG_KEEP_FILES_SECONDS=str(KEEP_SECONDS), SEG_OUTPUTS_DIR=str(outputs))
        server = start_app(env)
        url = f"http://127.0.0.1:{PORT}/"
        stats: dict[str, list] = defaultdict(list)
        stop, pause = threading.Event(), threading.Event()
        threads = [threading.Thread(target=client, args=(url, photos, truth, stop, pause, seed, stats))
                   for seed in range(args.clients)]
        samples, at_rest = [], {}

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
                files, mib = folder_usage(uploads)
                out_files, out_mib = folder_usage(outputs)
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
             f"Files older than {KEEP_SECONDS} s are deleted; files kept at most {max(s[2] for s in samples)}. "
             f"p50: {latency}. **{len(stats['failures'])} unexpected failures.**"]
    grew = last - first  # NaN (a failed run) compares False: then the failures decide
    verdict = "met" if grew <= GROWTH_MIB else "NOT met"
    rows += ["", f"Memory at rest grew by {grew:.0f} MiB from minute 5 to the end (criterion: at most "
             f"{GROWTH_MIB} MiB): **{verdict}**."]
    rows += [f"- failure: {f}" for f in stats["failures"][:5]]
    publish(f"Soak: {args.minutes:g} minutes of mixed traffic on loopback",
            f"{args.clients} clients, a request every 0.2-0.6 s each (/segment, /sam_prompt and /sam_objects on "
            f"{args.images} distinct 360x480 JPEGs, /score, and requests that must be refused); server RSS, and the files in "
            "its upload folder and outputs, sampled each minute; the server trims its heap each minute.", rows,
            args.markdown)
    return 1 if stats["failures"] or not grew <= GROWTH_MIB else 0


if __name__ == "__main__":
    sys.exit(main())
