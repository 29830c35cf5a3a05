"""The limits hold when requests arrive together, as a hostile client sends them: hundreds of joins
at once, uploads held open, more bytes than a client's quota, forged proxy headers."""

import asyncio
import json
import re
import socket
import time
import uuid

import forge
import httpx
import numpy as np
import pytest
from PIL import Image

from ui.admission import Admission, Busy
from ui.bodies import BodyGate, BodyStopped
from ui.guard import RequestGuard
from ui.limits import LIMITS

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)


def client_at(address: str, server: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any 127.0.0.x reaches the loopback server)."""
    return httpx.AsyncClient(base_url=server, timeout=60, limits=httpx.Limits(max_connections=400),
                             transport=httpx.AsyncHTTPTransport(local_address=address))


async def join_all(client: httpx.AsyncClient, bodies: list[dict], refusals: list | None = None) -> list[int]:
    """Send every join at once; their statuses (and the refusals' messages added to `refusals`)."""
    answers = await asyncio.gather(*(client.post("gradio_api/queue/join", json=b) for b in bodies))
    for answer in (a for a in answers if a.status_code == 429):  # Retry-After is the wait the message gives
        said = re.search(r"in about (\d+) s", answer.json()["detail"])
        assert answer.headers["retry-after"] == (said.group(1) if said else "2"), answer.json()["detail"]
    if refusals is not None:
        refusals += [a.json()["detail"] for a in answers if a.status_code == 429]
    return [a.status_code for a in answers]


async def wait_done(client: httpx.AsyncClient, session: str) -> bool:
    seen = []
    try:
        async with client.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
            async for line in stream.aiter_lines():
                seen.append(line)
                if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                    return json.loads(line[5:]).get("success", False)
    except httpx.HTTPError as e:
        raise AssertionError(f"{session}: {seen}") from e
    return False


@pytest.fixture(scope="module")
def labels_upload(server, tmp_path_factory):
    """A small label map uploaded to the server: the /score event's inputs, a job of milliseconds."""
    path = tmp_path_factory.mktemp("labels") / "labels.png"
    Image.fromarray(np.arange(48 * 36, dtype=np.uint8).reshape(36, 48) % 11).save(path)
    uploaded = httpx.post(server + "gradio_api/upload", files={"files": open(path, "rb")}, timeout=30).json()[0]
    return {"path": uploaded, "orig_name": "labels.png", **forge.MARKER}


def test_a_burst_of_joins_gets_no_more_places_than_the_limits(server, labels_upload):
    events = {e["api_name"]: e["fn_index"] for e in forge.events(server)}

    def score(session: str) -> dict:
        return {"data": [labels_upload, labels_upload], "fn_index": events["score"], "session_hash": session}

    async def scenario():
        async with client_at("127.0.0.3", server) as busy, client_at("127.0.0.1", server) as burst, \
                client_at("127.0.0.4", server) as one_session, client_at("127.0.0.2", server) as honest:
            # two training demos (seconds each) take both workers: no job of the burst ends during it,
            # so every place it gets is still held when the last join arrives
            blockers = [{"data": [None, 0.1], "fn_index": events["train"], "session_hash": uuid.uuid4().hex}
                        for _ in range(2)]
            assert await join_all(busy, blockers) == [200, 200]
            started = time.perf_counter()
            refusals = []
            from_address = await join_all(burst, [score(uuid.uuid4().hex) for _ in range(300)], refusals)
            session = uuid.uuid4().hex
            from_session = await join_all(one_session, [score(session) for _ in range(70)], refusals)
            elapsed = time.perf_counter() - started
            honest_session = uuid.uuid4().hex
            honest_join = (await honest.post("gradio_api/queue/join", json=score(honest_session))).status_code
            honest_done = await wait_done(honest, honest_session)
            return from_address, from_session, elapsed, honest_join, honest_done, refusals

    from_address, from_session, elapsed, honest_join, honest_done, refusals = asyncio.run(scenario())
    print(f"300 joins from one address and 70 from one session sent in {elapsed:.2f} s")
    assert elapsed < 8, "the burst outlasted the blockers: the counts below would prove nothing"
    assert from_address.count(200) == LIMITS.jobs_per_address, from_address
    assert set(from_address) == {200, 429}
    assert from_session.count(200) == LIMITS.jobs_per_client, from_session
    assert honest_join == 200 and honest_done  # another address is let in and served
    # each refusal says which limit: the address's places, the session's, or (joins arriving while
    # others are still being read) the bodies one address may send at once
    # (the first two with the wait until the oldest of those jobs is likely done)
    kinds = {re.sub(r", in about \d+ s$", "", refusal) for refusal in refusals}
    assert kinds <= {"busy: 12 requests from your address are queued or running (the limit is 12); "
                     "retry when one has finished",
                     "busy: you already have 3 requests queued or running (the limit is 3); retry when "
                     "one has finished",
                     "busy: your address is already sending 32 requests (the limit is 32); send the next "
                     "when one has finished"}, refusals
    assert len(kinds) >= 2


def test_places_are_returned_when_jobs_end(server, labels_upload):
    """After a full share ended, the same address gets its whole share again."""
    fn = next(e["fn_index"] for e in forge.events(server) if e["api_name"] == "score")

    async def scenario():
        async with client_at("127.0.0.6", server) as client:
            sessions = [uuid.uuid4().hex for _ in range(LIMITS.jobs_per_address)]
            first = await join_all(client, [{"data": [labels_upload] * 2, "fn_index": fn, "session_hash": s}
                                            for s in sessions])
            assert [await wait_done(client, s) for s in sessions] == [True] * len(sessions)
            again = await join_all(client, [{"data": [labels_upload] * 2, "fn_index": fn,
                                             "session_hash": uuid.uuid4().hex} for _ in sessions])
            return first, again

    first, again = asyncio.run(scenario())
    assert first == again == [200] * LIMITS.jobs_per_address


def test_admission_keeps_places_for_others():
    live = set()
    admission = Admission(per_session=2, per_address=4, queue_size=8, is_live=live.__contains__)  # 4 kept back
    from_a = [admission.admit(session=f"s{i}", address="a") for i in range(6)]
    assert [isinstance(t, Busy) for t in from_a] == [False] * 4 + [True] * 2
    assert "4 requests from your address are queued or running (the limit is 4)" in from_a[-1].message
    assert not isinstance(admission.admit(session="s0", address="b"), Busy)  # s0 now holds two places
    assert "you already have 2 requests" in admission.admit(session="s0", address="c").message
    # 5 of 8 held: the 4 last places go to clients that hold none, so "b" waits and "d", "e", "f" get in
    assert "nearly full" in admission.admit(session=None, address="b").message
    assert [isinstance(admission.admit(session=None, address=x), Busy) for x in "def"] == [False] * 3
    assert "the queue is full (8 requests)" in admission.admit(session=None, address="g").message
    for i, ticket in enumerate(from_a[:4]):
        admission.joined(ticket, f"e{i}")
        live.add(f"e{i}")
    assert len(admission.held()) == 8
    live.clear()  # a's events ended: their places come back, and "a" may join again
    assert len(admission.held()) == 4 and not isinstance(admission.admit(session="s9", address="a"), Busy)
    admission.joined(admission.admit(session=None, address="h"), None)  # an answer without an event id
    assert len(admission.held()) == 5
    with pytest.raises(ValueError, match="cannot give one address"):
        Admission(per_session=3, per_address=12, queue_size=16, is_live=live.__contains__)


def test_waiting_jobs_are_served_address_by_address():
    """Twelve jobs sent at once by one address, then one by another: the other's runs second, not
    thirteenth, and a third address's two jobs take turns with the first's."""
    live = set()
    admission = Admission(per_session=12, per_address=12, queue_size=64, is_live=live.__contains__)
    waiting = []
    for name, address in [*((f"a{i}", "a") for i in range(12)), ("b0", "b"), ("c0", "c"), ("c1", "c")]:
        admission.joined(admission.admit(session=name, address=address), name)
        live.add(name)
        waiting.append(Event(name))
    running = waiting[:2]  # a0 and a1 run already
    order = [e._id for e in admission.fair_order(waiting[2:], running)]
    assert order[:5] == ["b0", "c0", "c1", "a2", "a3"]  # a has two running: its next is its third
    assert sorted(order) == sorted(e._id for e in waiting[2:])
    assert [e._id for e in admission.fair_order(waiting, [])][:4] == ["a0", "b0", "c0", "a1"]


class Event:
    def __init__(self, name):
        self._id = name


def test_a_light_visitor_goes_ahead_of_a_crowds_heavy_jobs():
    """50 addresses with heavy jobs waiting (their kind learned at 10 s a run), an honest visitor whose
    0.3 s jobs have run every 3 s: its next job runs next. Served in turn, it waited behind all 50."""
    now = [0.0]
    live = set()
    admission = Admission(per_session=12, per_address=12, queue_size=1024, is_live=live.__contains__, slots=2,
                          work_seconds=10_000, window=60, clock=lambda: now[0])

    def join(address: str, kind: str, name: str) -> Event:
        ticket = admission.admit(session=name, address=address, kind=kind)
        admission.joined(ticket, name)
        live.add(name)
        return Event(name)

    for i in range(20):  # the honest visitor's history: a /segment every 3 s
        admission.ran(join("honest", "segment", f"h{i}")._id, 0.3)
        live.discard(f"h{i}")
        now[0] += 3
    admission.ran(join("warm", "sam_everything", "w")._id, 10)  # the heavy kind has run once
    live.discard("w")
    waiting = [join(f"10.0.{i}.1", "sam_everything", f"a{i}.{k}") for k in range(3) for i in range(50)]
    running = waiting[:2]
    waiting = waiting[2:] + [join("honest", "segment", "h-next")]
    order = [e._id for e in admission.fair_order(waiting, running)]
    assert order[0] == "h-next", order[:5]
    assert order[1:49] == [f"a{i}.0" for i in range(2, 50)]  # then the crowd's first jobs, in turn


def test_heavy_work_past_the_queues_bound_is_refused_with_its_wait():
    live = set()
    admission = Admission(per_session=12, per_address=12, queue_size=1024, is_live=live.__contains__, slots=2,
                          work_seconds=100, light_seconds=2)
    admission.joined(admission.admit(session="w", address="w", kind="heavy"), "w")
    live.add("w")
    admission.ran("w", 10)  # heavy: 10 s a run
    admission.joined(admission.admit(session="s", address="10.9.9.7", kind="segment"), "s")
    admission.ran("s", 0.3)  # and a light kind, learned
    live.discard("w")
    for i in range(10):  # 10 heavy jobs held: 100 s of work
        admission.joined(admission.admit(session=f"s{i}", address=f"10.0.0.{i}", kind="heavy"), f"e{i}")
        live.add(f"e{i}")
    busy = admission.admit(session="late", address="10.9.9.9", kind="heavy")
    assert isinstance(busy, Busy) and busy.retry_after == 5  # (100 + 10 - 100) s of work over 2 slots
    assert "about 50 s of work queued" in busy.message and "retry in about 5 s" in busy.message
    assert isinstance(admission.admit(session="new", address="10.9.9.8", kind="new"), Busy)  # unknown: heavy
    light = admission.admit(session="light", address="10.9.9.9", kind="segment")
    assert not isinstance(light, Busy)  # light requests still get in


def test_the_quota_is_a_sliding_window():
    now = [0.0]
    gate = BodyGate(open_per_address={"upload": 2}, idle_seconds=5, quota_bytes=1000, window_seconds=60,
                    clock=lambda: now[0])

    async def send(address: str, n: int):
        chunks = [{"type": "http.request", "body": b"x" * 100, "more_body": True}] * (n // 100)

        async def receive():
            return chunks.pop() if chunks else {"type": "http.request", "body": b"", "more_body": False}
        counted = gate.counted(receive, address=address, cap=10_000, too_large="too large")
        for _ in range(n // 100):
            await counted()

    asyncio.run(send("a", 900))
    assert gate.spent("a") == (900, 0) and gate.enter("a", "upload", 100) is None
    gate.leave("a", "upload")
    status, message, retry = gate.enter("a", "upload", 200)
    assert status == 429 and "sent 0 MB in the last 1 minutes; the limit is 0 MB: retry in about 61 s" in message
    assert retry == 61  # Retry-After says what the message says
    with pytest.raises(BodyStopped, match="the limit is"):
        asyncio.run(send("a", 200))
    assert gate.enter("b", "upload", 500) is None  # another address has its own quota
    now[0] = 61  # the window slid past the first bytes
    assert gate.spent("a") == (0, 0) and gate.enter("a", "upload", 900) is None
    assert gate.enter("a", "upload") is None and gate.enter("a", "upload")[0] == 429  # two open at once, not three


def test_the_proxys_address_is_the_right_most():
    guard = RequestGuard(None, blocks=None, limits=LIMITS, upload_folder="/tmp", trust_proxy=True)

    def scope(*forwarded: bytes) -> dict:
        return {"client": ("10.0.0.9", 5000), "headers": [(b"x-forwarded-for", f) for f in forwarded]}
    assert guard.address(scope(b"203.0.113.7")) == "203.0.113.7"
    # a client writes its own header; the Space's proxy appends the address it saw
    assert guard.address(scope(b"1.2.3.4, 5.6.7.8, 203.0.113.7")) == "203.0.113.7"
    # several lines are one list in order, and the proxy appends at its end (an empty line is no value)
    assert guard.address(scope(b"1.2.3.4", b"5.6.7.8, 203.0.113.7")) == "203.0.113.7"
    assert guard.address(scope(b"1.2.3.4", b"203.0.113.7", b" ")) == "203.0.113.7"
    assert guard.address(scope()) == "10.0.0.9"
    direct = RequestGuard(None, blocks=None, limits=LIMITS, upload_folder="/tmp", trust_proxy=False)
    assert direct.address(scope(b"203.0.113.7")) == "10.0.0.9"


def held_uploads(server: str, count: int, size: int) -> list[socket.socket]:
    """`count` uploads that say they carry `size` bytes and send one byte fewer, then wait."""
    host, port = server.split("//")[1].strip("/").split(":")
    boundary = "b" * 16
    head = f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.png\"\r\n\r\n".encode()
    sockets = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)), source_address=("127.0.0.7", 0))
        s.sendall(f"POST /gradio_api/upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n".encode())
        s.sendall(head + b"\0" * (size - len(head) - 1))
        sockets.append(s)
    return sockets


def status_of(s: socket.socket, timeout: float) -> int | None:
    s.settimeout(timeout)
    try:
        line = s.recv(4096).split(b"\r\n")[0]
    except (TimeoutError, ConnectionError):
        return None
    return int(line.split()[1]) if line.startswith(b"HTTP/") else None


def rss() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) << 10 for line in f if line.startswith("VmRSS"))


def test_uploads_held_open_cost_no_memory_and_time_out(server):
    """The server runs in this process: its resident size is read before and after."""
    before = rss()
    sockets = held_uploads(server, 150, 2_000_000)
    statuses = [status_of(s, 2) for s in sockets]
    grown = rss() - before
    refused = statuses.count(429)
    print(f"150 uploads held one byte short: {refused} refused at once, resident size +{grown / 2**20:.0f} MiB")
    assert refused == 150 - LIMITS.uploads_per_address and statuses.count(None) == LIMITS.uploads_per_address
    assert grown < 100 << 20  # all 150 held whole would be 300 MB
    held = [s for s, status in zip(sockets, statuses) if status is None]
    late = [status_of(s, LIMITS.idle_body_seconds + 10) for s in held]
    assert late == [408] * len(held), late  # stopped when they went quiet
    for s in sockets:
        s.close()
    with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.7"), timeout=30) as client:
        answer = client.post(server + "gradio_api/upload", files={"files": ("x.txt", b"fine")})
    assert answer.status_code == 200  # the address's places came back


def test_an_address_past_its_quota_is_refused_with_the_reason(server):
    chunk = b"\0" * (LIMITS.upload_bytes - 1000)
    transport = httpx.HTTPTransport(local_address="127.0.0.8")
    with httpx.Client(base_url=server, timeout=60, transport=transport) as client:
        statuses = []
        for _ in range(LIMITS.bytes_per_address // len(chunk) + 2):
            answer = client.post("gradio_api/upload", files={"files": ("x.bin", chunk)})
            statuses.append(answer.status_code)
            if answer.status_code != 200:
                break
    assert statuses[:-1] == [200] * (len(statuses) - 1) and statuses[-1] == 429, statuses
    assert f"the limit is {LIMITS.bytes_per_address / 1e6:.0f} MB" in answer.text and "retry in" in answer.text
    assert len(statuses) - 1 == LIMITS.bytes_per_address // len(chunk)


@pytest.mark.parametrize("fn_index", ["33.0", " 33", True, 33.0, "33"])
def test_an_event_index_in_any_other_form_is_refused(server, fn_index):
    body = {"data": ["/etc/passwd"], "fn_index": fn_index, "session_hash": uuid.uuid4().hex}
    answer = httpx.post(server + "gradio_api/queue/join", json=body, timeout=30)
    assert answer.status_code == 400 and "fn_index must be a whole number" in answer.json()["detail"]


def test_odd_addresses_get_short_answers(server):
    assert httpx.get(server + "gradio_api/proxy=%00", timeout=30).status_code == 400
    long_path = "/tmp/" + "a" * 20_000
    answer = httpx.get(server + f"gradio_api/file={long_path}", timeout=30)
    assert answer.status_code == 414 and len(answer.text) < 200


def test_many_ranges_and_unknown_component_functions_get_answers_not_tracebacks(server, app, caplog):
    """22 ranges on a served file and a component function that does not exist: Gradio answered both
    with a 500 and a traceback in the log."""
    import logging

    caplog.set_level(logging.INFO)
    content = bytes(range(256)) * 4
    uploaded = httpx.post(server + "gradio_api/upload", files={"files": ("x.bin", content)}, timeout=30).json()[0]
    ranges = "bytes=" + ",".join(f"{i * 10}-{i * 10 + 5}" for i in range(22))
    whole = httpx.get(server + "gradio_api/file=" + uploaded, headers={"Range": ranges}, timeout=30)
    assert whole.status_code == 200 and whole.content == content  # the whole file instead
    one = httpx.get(server + "gradio_api/file=" + uploaded, headers={"Range": "bytes=0-9"}, timeout=30)
    assert one.status_code == 206 and one.content == content[:10]  # a single range still works
    for body in ({"component_id": 99999, "fn_name": "x", "data": None, "session_hash": "s"},
                 {"component_id": next(iter(app.demo.blocks)), "fn_name": "preprocess", "data": None,
                  "session_hash": "s"}):  # a real component, a method that is not a server function
        answer = httpx.post(server + "gradio_api/component_server", json=body, timeout=30)
        assert answer.status_code == 404 and "no such component function" in answer.text
    assert "Traceback" not in caplog.text
