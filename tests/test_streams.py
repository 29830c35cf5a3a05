"""Gradio's message streams, as a hostile or a clumsy client reads them: several at once for one
session, and a session read again after its last message."""

import asyncio
import uuid

import forge
import httpx
import pytest


@pytest.mark.slow  # starts a /segment on the shared server (docs/testing.md), as does the next
def test_one_message_stream_per_session(server, sample, caplog):
    """Ten streams opened at once for one session's event: one reads its messages, the others are
    refused (409 while that stream stays open; 404 once it has read the last message). Gradio
    answered each extra one 200, then raised inside it when the session's events were done: a 500
    and a traceback per stream."""
    import logging

    caplog.set_level(logging.INFO)
    session = join_segment(server, sample)

    async def scenario():
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            return await asyncio.wait_for(asyncio.gather(*(read(client, session) for _ in range(10))), 120)

    answers = asyncio.run(scenario())
    statuses = sorted(status for status, _ in answers)
    assert statuses[0] == 200 and set(statuses[1:]) <= {404, 409}, statuses
    assert "process_completed" in next(text for status, text in answers if status == 200)
    assert "Traceback" not in caplog.text


@pytest.mark.slow
def test_a_session_read_to_the_end_is_not_read_again(server, sample):
    """Once a stream has read a session's last message, Gradio keeps the session's message queue and a
    second stream got heartbeats for ever (a connection held for nothing, and a test that never ended).
    Now it is refused at once, by the session's stream and by a scripted call's alike."""
    session = join_segment(server, sample)

    async def twice():
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            first = await asyncio.wait_for(read(client, session), 120)
            again = await asyncio.wait_for(read(client, session), 30)
            return first, again

    (status, text), (again, said) = asyncio.run(twice())
    assert status == 200 and "process_completed" in text
    assert again == 404 and "no events whose messages are waiting" in said, (again, said)
    call = httpx.post(server + "gradio_api/call/score", timeout=30, json={"data": [None, None]}).json()["event_id"]
    first = httpx.get(server + f"gradio_api/call/score/{call}", timeout=60)
    assert first.status_code == 200 and "event:" in first.text
    second = httpx.get(server + f"gradio_api/call/score/{call}", timeout=30)
    assert second.status_code == 404, second.text


def test_a_pages_next_stream_is_served_when_its_last_one_ends_a_moment_later():
    """The page opens a session's next stream as soon as the last one has sent "close_stream", which
    can be before that stream's answer has ended on the server. That stream is served once the last one
    ends (it was refused 409, and the page waited for its click's answer for ever); a stream that stays
    open past the handover still refuses a second reader."""
    import gradio as gr

    from ui import gradio_private as private
    from ui.guard import STREAM_HANDOVER_SECONDS, RequestGuard
    from ui.limits import Limits

    blocks = gr.Blocks()
    private.queue(blocks).pending_event_ids_session["s"] = {"next event"}  # the page has joined its next event

    async def scenario(last_ends_after: float):
        released, served = asyncio.Event(), []

        async def gradio(scope, receive, send):  # a message stream that ends when `released` is set
            served.append(scope["query_string"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b'data: {"msg":"close_stream"}\n\n', "more_body": True})
            await released.wait()
            await send({"type": "http.response.body", "body": b""})

        guard = RequestGuard(gradio, blocks=blocks, limits=Limits(), upload_folder="/tmp")
        statuses = []

        async def stream(name: bytes):
            async def send(message):
                if message["type"] == "http.response.start":
                    statuses.append((name, message["status"]))
            scope = {"type": "http", "method": "GET", "path": "/gradio_api/queue/data", "headers": [],
                     "query_string": b"session_hash=s&" + name, "client": ("127.0.0.1", 1)}
            await guard(scope, asyncio.Event().wait, send)

        last = asyncio.create_task(stream(b"last"))
        await asyncio.sleep(0.05)
        asyncio.get_running_loop().call_later(last_ends_after, released.set)
        await stream(b"next")
        released.set()
        await last
        return statuses, served

    statuses, served = asyncio.run(scenario(last_ends_after=0.3))
    assert statuses == [(b"last", 200), (b"next", 200)] and len(served) == 2, statuses
    statuses, served = asyncio.run(scenario(last_ends_after=STREAM_HANDOVER_SECONDS + 2))
    assert statuses == [(b"last", 200), (b"next", 409)] and len(served) == 1, statuses


def test_a_hang_up_after_the_last_message_keeps_the_event_joined_since():
    """The page closes a session's stream as soon as it reads "close_stream", which can be before the
    answer's last chunk has left the server. A click made at that moment joins its event, and that
    hang-up was taken for a client leaving: the event was dropped, and the page waited for its answer
    for ever (the likely cause of a keyboard click unanswered for 60 s in CI). A hang-up before that
    message is a client leaving: its events go."""
    import gradio as gr
    from gradio.queueing import Event

    from ui import gradio_private as private
    from ui.guard import RequestGuard
    from ui.limits import Limits

    def scenario(hang_up_after: bytes) -> bool:
        """Whether the event joined during the stream is still in the queue once the client hung up."""
        with gr.Blocks() as blocks:
            gr.Button().click(lambda: None, None, None, concurrency_id="cpu")
        blocks.queue()
        queue = private.queue(blocks)
        fn = next(iter(blocks.fns.values()))
        queue.create_event_queue_for_fn(fn)
        event = Event("s", fn, None, None)  # the page's next event, joined as its last one's answer came
        queue.event_queue_per_concurrency_id["cpu"].queue.append(event)
        queue.pending_event_ids_session["s"] = {event._id}

        async def run():
            sent = asyncio.Event()

            async def gradio(scope, receive, send):  # the last event's answer, close_stream, the end
                await send({"type": "http.response.start", "status": 200, "headers": []})
                for body in (b'data: {"msg":"process_completed"}\n\n', b'data: {"msg":"close_stream"}\n\n'):
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                    await asyncio.sleep(0.2)  # the guard sees a hang-up made after this chunk before the next
                await send({"type": "http.response.body", "body": b""})

            async def send(message):
                if hang_up_after in message.get("body", b""):
                    sent.set()

            async def receive():  # the client hangs up once it has read `hang_up_after`
                await sent.wait()
                return {"type": "http.disconnect"}

            guard = RequestGuard(gradio, blocks=blocks, limits=Limits(), upload_folder="/tmp")
            scope = {"type": "http", "method": "GET", "path": "/gradio_api/queue/data", "headers": [],
                     "query_string": b"session_hash=s", "client": ("127.0.0.1", 1)}
            await guard(scope, receive, send)

        asyncio.run(run())
        return event in queue.event_queue_per_concurrency_id["cpu"].queue

    assert scenario(hang_up_after=b"close_stream")  # the page read the last message: its next event stays
    assert not scenario(hang_up_after=b"process_completed")  # it left before: its events are dropped


def join_segment(server: str, sample) -> str:
    """A fresh session with one /segment event joined to the queue."""
    from conftest import upload

    fn_index = next(e["fn_index"] for e in forge.events(server) if e["api_name"] == "segment")
    session = uuid.uuid4().hex
    joined = httpx.post(server + "gradio_api/queue/join", timeout=30, json={
        "data": [upload(sample[0]), "fcn8s"], "fn_index": fn_index, "session_hash": session})
    assert joined.status_code == 200
    return session


async def read(client: httpx.AsyncClient, session: str) -> tuple[int, str]:
    """A session's message stream read to its end: the status and every line."""
    async with client.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as stream:
        return stream.status_code, "".join([line async for line in stream.aiter_lines()])
