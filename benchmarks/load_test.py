"""Load test on loopback: concurrent clients sending mixed requests through the app's API.

    python benchmarks/load_test.py [--clients 8] [--requests 25] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM checkpoint made here), then
each client sends `--requests` requests in a seeded mix: /segment with a from-scratch model,
/sam_prompt on one of many distinct images (so SAM's embedding cache must evict), and /score.
Prints failures (the target is none), p50/p95 latency per endpoint, and the server's memory after
each quarter of the run: bounded if the cache is.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from app_speed import app_env, random_sam_checkpoint, street  # noqa: E402
from report import publish  # noqa: E402

from seg.explorer.zoo import Zoo  # noqa: E402

PORT = 7971


def current_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_app(env: dict, argv: tuple[str, ...] = ("app.py",), *, cpus: set[int] | None = None) -> subprocess.Popen:
    """`python app.py` (or `argv`) in `env`, once its page answers; `cpus`: the cores it may run on."""
    server = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, preexec_fn=pinned(cpus))
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.terminate()
    raise RuntimeError("app.py did not start within 120 s")


def pinned(cpus: set[int] | None):
    """For Popen's preexec_fn: the child and every thread it starts run on `cpus` only (as `taskset`)."""
    return None if cpus is None else lambda: os.sched_setaffinity(0, cpus)


@contextmanager
def running_app(env: dict, argv: tuple[str, ...] = ("app.py",), *, warm_up_seconds: float = 0,
                cpus: set[int] | None = None):
    """`start_app`, then `warm_up_seconds` for the app's background warm-up; stopped when the block ends."""
    server = start_app(env, argv, cpus=cpus)
    try:
        time.sleep(warm_up_seconds)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_load(url: str, workdir: Path, *, clients: int, requests: int, images: int, models: list[str],
             on_progress=None) -> tuple[dict[str, list[float]], list[str]]:
    """Send the mix; returns (latencies in ms per endpoint, failure messages)."""
    from gradio_client import Client, handle_file

    photos = []
    for i in range(images):  # distinct images: each SAM request on a new one needs a new embedding
        path = workdir / f"photo_{i}.png"
        picture = street((360, 480))
        picture[: 10 + i, : 10 + i] = (i * 37) % 256  # a different corner: different content, different key
        Image.fromarray(picture).save(path)
        photos.append(path)
    truth = workdir / "truth.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 11, (360, 480), dtype=np.uint8)).save(truth)
    latencies: dict[str, list[float]] = {"segment": [], "sam_prompt": [], "score": []}
    failures: list[str] = []
    done = [0]

    def client_run(seed: int) -> None:
        rng = random.Random(seed)
        client = Client(url, verbose=False)
        for _ in range(requests):
            kind = rng.choice(("segment", "sam_prompt", "score"))
            photo = handle_file(str(rng.choice(photos)))
            args = {"segment": (photo, rng.choice(models)),
                    "sam_prompt": (photo, f"[[{rng.uniform(0, 480):.0f}, {rng.uniform(0, 360):.0f}]]", "[1]", ""),
                    "score": (handle_file(str(truth)), handle_file(str(truth)))}[kind]
            started = time.perf_counter()
            try:
                client.predict(*args, api_name=f"/{kind}")
                latencies[kind].append(1000 * (time.perf_counter() - started))
            except Exception as error:  # every failure is counted and reported, none may pass silently
                failures.append(f"{kind}: {error}")
            done[0] += 1
            if on_progress:
                on_progress(done[0])

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_run, range(clients)))
    return latencies, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=25, help="requests per client")
    parser.add_argument("--images", type=int, default=24, help="distinct images (SAM's cache holds 8)")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    models = [k for k in Zoo(ROOT / "weights", pretrained=()).semantic_names() if k != "segformer_b0"]
    with tempfile.TemporaryDirectory() as tmp:
        env = app_env(random_sam_checkpoint(Path(tmp)), PORT)
        server = start_app(env)
        total = args.clients * args.requests
        memory = []

        def progress(n: int) -> None:
            if n % max(1, total // 4) == 0:
                memory.append((n, current_rss_mib(server.pid)))

        try:
            started = time.perf_counter()
            latencies, failures = run_load(f"http://127.0.0.1:{PORT}/", Path(tmp), clients=args.clients,
                                           requests=args.requests, images=args.images, models=models,
                                           on_progress=progress)
            wall = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    rows = ["| endpoint | requests | p50 (ms) | p95 (ms) |", "| --- | ---: | ---: | ---: |"]
    for kind, values in latencies.items():
        if values:
            p50, p95 = np.percentile(values, 50), np.percentile(values, 95)
            rows.append(f"| /{kind} | {len(values)} | {p50:.0f} | {p95:.0f} |")
    rows += ["", f"{total} requests from {args.clients} concurrent clients in {wall:.0f} s; "
             f"**{len(failures)} failed**.",
             "Server memory (RSS) after n requests: " + ", ".join(f"{n}: {m:.0f} MiB" for n, m in memory) + "."]
    rows += [f"- failure: {f}" for f in failures[:5]]
    publish(f"Load test: {args.clients} clients x {args.requests} mixed requests on loopback",
            f"{args.images} distinct images for SAM (cache of 8 embeddings); two jobs run at once "
            "(queue concurrency 2), the rest wait.", rows, args.markdown)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
