"""A fair queue under a flood: one client sends SAM requests as fast as it can while four others
use the app normally. Their latency is measured with and without the flood, interleaved.

    python benchmarks/fair_queue.py [--rounds 2] [--requests 12] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM checkpoint made here). Each
round runs the four normal clients once alone and once beside the flood; the flood's client is one
session, so the guard lets it hold `jobs_per_client` jobs and answers the rest "busy". Target: the
normal clients' p95 beside the flood within twice their p95 alone.
"""

import argparse
import random
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from app_speed import app_env, random_sam_checkpoint, street  # noqa: E402
from load_test import start_app  # noqa: E402
from report import publish  # noqa: E402

from seg.limits import LIMITS  # noqa: E402

PORT = 7981


def normal_clients(url: str, photos: list[Path], *, clients: int, requests: int, seed: int) -> list[float]:
    """`clients` people, each sending `requests` mixed requests one after another; latencies in ms."""
    from gradio_client import Client, handle_file

    latencies: list[float] = []

    def person(index: int) -> None:
        rng = random.Random(seed * 100 + index)
        client = Client(url, verbose=False)
        for _ in range(requests):
            photo = handle_file(str(rng.choice(photos)))
            started = time.perf_counter()
            if rng.random() < 0.5:
                client.predict(photo, rng.choice(["fcn8s", "unet", "deeplabv3"]), api_name="/segment")
            else:
                point = f"[[{rng.uniform(0, 480):.0f}, {rng.uniform(0, 360):.0f}]]"
                client.predict(photo, point, "[1]", "", api_name="/sam_prompt")
            latencies.append(1000 * (time.perf_counter() - started))
            time.sleep(rng.uniform(0.1, 0.4))  # a person looks at the answer before the next request

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(person, range(clients)))
    return latencies


def flood(url: str, photo: Path, stop: threading.Event, counts: dict) -> None:
    """One client (one session) joining the queue with a SAM request every 20 ms until `stop`, by raw
    HTTP as a script would (the photo uploaded once), reading its answers as they come."""
    session = uuid.uuid4().hex
    with httpx.Client(timeout=60) as http:
        uploaded = http.post(url + "gradio_api/upload", files={"files": open(photo, "rb")}).json()[0]
        value = {"path": uploaded, "orig_name": photo.name, "meta": {"_type": "gradio.FileData"}}
        fn_index = next(i for i, d in enumerate(http.get(url + "config").json()["dependencies"])
                        if d.get("api_name") == "sam_prompt")

        def listen() -> None:  # the answers to the accepted joins (the server ends a stream with nothing pending)
            while not (stop.is_set() and counts["answered"] + counts["failed"] >= counts["accepted"]):
                with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session},
                                  timeout=None) as stream:
                    for line in stream.iter_lines():
                        if '"process_completed"' in line:
                            counts["answered" if '"success":true' in line.replace(" ", "") else "failed"] += 1
                time.sleep(0.05)

        listener = None
        i = 0
        while not stop.is_set():
            i += 1
            body = {"data": [value, f"[[{10 + i % 400}, 20]]", "[1]", ""], "fn_index": fn_index,
                    "session_hash": session}
            status = http.post(url + "gradio_api/queue/join", json=body).status_code
            counts[{200: "accepted", 429: "busy"}.get(status, "other")] += 1
            if status == 200 and listener is None:
                listener = threading.Thread(target=listen, daemon=True)
                listener.start()
            time.sleep(0.02)
        if listener is not None:
            listener.join(timeout=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=12, help="requests per normal client per phase")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = []
        for i in range(3):  # few images: SAM's embeddings are cached, so requests cost alike in both phases
            picture = street((360, 480))
            picture[: 10 + i, : 10 + i] = i * 80
            Image.fromarray(picture).save(tmp / f"photo_{i}.png")
            photos.append(tmp / f"photo_{i}.png")
        env = app_env(random_sam_checkpoint(tmp), PORT)
        server = start_app(env)
        url = f"http://127.0.0.1:{PORT}/"
        alone, beside = [], []
        counts = {"accepted": 0, "busy": 0, "other": 0, "answered": 0, "failed": 0}
        try:
            normal_clients(url, photos, clients=args.clients, requests=2, seed=99)  # warm: models loaded
            for round_ in range(args.rounds):
                alone += normal_clients(url, photos, clients=args.clients, requests=args.requests, seed=round_)
                stop = threading.Event()
                flooder = threading.Thread(target=flood, args=(url, photos[0], stop, counts))
                flooder.start()
                time.sleep(1)  # the flood is on before the normal clients start
                beside += normal_clients(url, photos, clients=args.clients, requests=args.requests, seed=round_)
                stop.set()
                flooder.join()
        finally:
            server.terminate()
            server.wait(timeout=30)
    p = {name: (np.percentile(v, 50), np.percentile(v, 95)) for name, v in (("alone", alone), ("beside", beside))}
    ratio = p["beside"][1] / p["alone"][1]
    rows = ["| normal clients | requests | p50 (ms) | p95 (ms) |", "| --- | ---: | ---: | ---: |",
            f"| alone | {len(alone)} | {p['alone'][0]:.0f} | {p['alone'][1]:.0f} |",
            f"| beside the flood | {len(beside)} | {p['beside'][0]:.0f} | {p['beside'][1]:.0f} |",
            "", f"p95 beside the flood / alone: **{ratio:.2f}** (target: at most 2). The flood's joins: "
            f"{counts['accepted']} accepted ({counts['answered']} answered, {counts['failed']} failed), "
            f"{counts['busy']} answered 429 \"busy, retry\", {counts['other']} other statuses."]
    publish("Fair queue: one client flooding, four behaving normally",
            f"{args.rounds} rounds, alone and beside the flood interleaved; each normal client sends "
            f"{args.requests} requests per phase (/segment or /sam_prompt, 0.1-0.4 s apart); the flood submits a "
            f"SAM request every 20 ms from one session (cap: {LIMITS.jobs_per_client} jobs per session).",
            rows, args.markdown)
    return 0 if ratio <= 2 and counts["other"] == 0 and counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
