"""A fair queue under bursts: one client sends 300 comparisons at once, again and again, while eight
others compare photos as people do. The eight's latency is measured with and without the bursts,
interleaved.

    python benchmarks/fair_queue.py [--rounds 2] [--requests 4] [--markdown FILE]

Starts `python app.py` (shipped weights, a random-weight MobileSAM checkpoint made here). Every
client joins the queue by raw HTTP, as the page does, from an address of its own on loopback
(127.0.0.x): the burster from 127.0.0.1, each honest client from its own. The burster sends 300
joins at once, each with its own session, and a new burst a second after the last; the guard lets
it hold `jobs_per_address` places and answers the rest "busy". Targets: the honest clients' p95
beside the bursts within twice their p95 alone, and none of their requests refused.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
import uuid
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

from ui.limits import LIMITS  # noqa: E402

PORT = 7981
MARKER = {"meta": {"_type": "gradio.FileData"}}


def compare_job(url: str, photo: Path, truth: Path) -> tuple[int, list]:
    """The comparison event's index and a `data` list for it: the photo and its truth uploaded, the
    models ticked by default, no TTA, no CRF, no refinement by SAM."""
    config = httpx.get(url + "config", timeout=30).json()
    components = {c["id"]: c for c in config["components"]}
    index, dependency = next((i, d) for i, d in enumerate(config["dependencies"])
                             if d.get("api_name") == "run")  # the Compare tab's run (CompareTab.run)
    files = []
    for path in (photo, truth):
        uploaded = httpx.post(url + "gradio_api/upload", files={"files": open(path, "rb")}, timeout=30).json()[0]
        files.append({"path": uploaded, "orig_name": path.name, **MARKER})
    models = components[dependency["inputs"][2]]["props"]["value"]
    data = [files[0], files[1], models, False, False, ""]
    if len(data) != len(dependency["inputs"]):  # the tab's inputs changed: say so, not an empty table
        raise SystemExit(f"the comparison takes {len(dependency['inputs'])} inputs; this benchmark sends {len(data)}")
    return dependency.get("id", index), data


async def joined_and_done(client: httpx.AsyncClient, fn_index: int, data: list) -> tuple[int, float | None]:
    """One job: join, then read its session's stream until it completes. (status, seconds or None)."""
    session = uuid.uuid4().hex
    started = time.perf_counter()
    answer = await client.post("gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                                                              "session_hash": session})
    if answer.status_code != 200:
        return answer.status_code, None
    async with client.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                ok = json.loads(line[5:]).get("success")
                return (200 if ok else 500), time.perf_counter() - started
    return 500, None


def address(i: int) -> httpx.AsyncHTTPTransport:
    return httpx.AsyncHTTPTransport(local_address=f"127.0.0.{i}")


async def honest_clients(url: str, fn_index: int, data: list, *, clients: int, requests: int) -> list[tuple]:
    """`clients` people at 127.0.0.2 and on, each comparing `requests` times, a moment apart."""
    async def person(i: int) -> list[tuple]:
        async with httpx.AsyncClient(base_url=url, timeout=300, transport=address(2 + i)) as client:
            done = []
            for _ in range(requests):
                done.append(await joined_and_done(client, fn_index, data))
                await asyncio.sleep(0.1 + 0.3 * ((i * 7 + len(done)) % 5) / 4)  # reading the answer
            return done
    return [r for rs in await asyncio.gather(*(person(i) for i in range(clients))) for r in rs]


async def bursts(url: str, fn_index: int, data: list, stop: threading.Event, counts: dict) -> None:
    """300 joins at once from 127.0.0.1, each its own session, and again a second after, until `stop`."""
    limits = httpx.Limits(max_connections=400)
    async with httpx.AsyncClient(base_url=url, timeout=300, transport=address(1), limits=limits) as client:
        while not stop.is_set():
            answers = await asyncio.gather(*(client.post("gradio_api/queue/join", json={
                "data": data, "fn_index": fn_index, "session_hash": uuid.uuid4().hex}) for _ in range(300)))
            for answer in answers:
                counts[{200: "accepted", 429: "busy"}.get(answer.status_code, "other")] += 1
            counts["bursts"] += 1
            await asyncio.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=4, help="comparisons per honest client per phase")
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        Image.fromarray(street((360, 480))).save(tmp / "photo.png")
        Image.fromarray((np.arange(360 * 480).reshape(360, 480) // 9000 % 11).astype(np.uint8)).save(tmp / "truth.png")
        server = start_app(app_env(random_sam_checkpoint(tmp), PORT))
        url = f"http://127.0.0.1:{PORT}/"
        alone, beside = [], []
        counts = {"accepted": 0, "busy": 0, "other": 0, "bursts": 0}
        try:
            fn_index, data = compare_job(url, tmp / "photo.png", tmp / "truth.png")
            asyncio.run(honest_clients(url, fn_index, data, clients=2, requests=1))  # warm: models loaded
            for _ in range(args.rounds):
                alone += asyncio.run(honest_clients(url, fn_index, data, clients=args.clients, requests=args.requests))
                stop = threading.Event()
                burster = threading.Thread(target=lambda: asyncio.run(bursts(url, fn_index, data, stop, counts)))
                burster.start()
                time.sleep(2)  # the first burst's places are taken before the honest clients start
                beside += asyncio.run(honest_clients(url, fn_index, data, clients=args.clients,
                                                     requests=args.requests))
                stop.set()
                burster.join()
                time.sleep(15)  # the last burst's jobs drain before the next phase alone
        finally:
            server.terminate()
            server.wait(timeout=30)
    refused = sum(1 for status, _ in alone + beside if status != 200)
    seconds = {name: [s for status, s in v if status == 200] for name, v in (("alone", alone), ("beside", beside))}
    if not all(seconds.values()):
        raise SystemExit(f"no comparison succeeded {' or '.join(k for k, v in seconds.items() if not v)}: "
                         "nothing to measure")
    p = {name: (np.percentile(v, 50), np.percentile(v, 95)) for name, v in seconds.items()}
    ratio = p["beside"][1] / p["alone"][1]
    rows = ["| honest clients | comparisons | p50 (s) | p95 (s) |", "| --- | ---: | ---: | ---: |",
            f"| alone | {len(alone)} | {p['alone'][0]:.2f} | {p['alone'][1]:.2f} |",
            f"| beside the bursts | {len(beside)} | {p['beside'][0]:.2f} | {p['beside'][1]:.2f} |",
            "", f"p95 beside the bursts / alone: **{ratio:.2f}** (target: at most 2). Honest requests refused or "
            f"failed: **{refused}**. The burster's {counts['bursts']} bursts of 300: {counts['accepted']} joins "
            f"accepted, {counts['busy']} answered 429 \"busy\", {counts['other']} other statuses."]
    publish("Fair queue: one client's bursts of 300, eight comparing photos",
            f"{args.rounds} rounds, alone and beside the bursts interleaved; each honest client (its own loopback "
            f"address) compares a 360x480 photo with its truth {args.requests} times per phase, 0.1-0.4 s apart "
            f"(the default models, no TTA, no CRF); the burster sends the same comparison 300 times at once from "
            f"one address, then again a second later (cap: {LIMITS.jobs_per_address} jobs per address).",
            rows, args.markdown)
    return 0 if ratio <= 2 and refused == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
