"""What a request may carry, checked before Gradio or a handler sees it.

Gradio checks a file value's path only when the value carries its `FileData` marker, and any
event of the page can be called by hand, so a forged value could name any file on the server.
Two layers refuse that, whatever the payload's form:

- `RequestGuard`, an ASGI middleware: caps every request body as it streams (so a `data:` URL
  cannot smuggle a file past the upload limit; `ui/bodies.py`), refuses file values that were not
  uploaded to this server, and keeps one client from filling the queue (`jobs_per_client` per
  session, `jobs_per_address` per IP address, queued or running, counted on arrival:
  `ui/admission.py`).
- `guard_components` (`ui/component_guard.py`): every input component's preprocessing checks the
  same again, and any failure there becomes a message instead of a trace.
"""

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import gradio as gr

from . import gradio_private as private
from .admission import Admission, Busy, make_admission, serve_in_turn
from .bodies import BodyGate, BodyStopped, CountedBody, read_body
from .limits import Limits

log = logging.getLogger("seg.app")

# How long a session's new message stream waits for its last one to end (see serve_stream)
STREAM_HANDOVER_SECONDS = 5.0

NOT_UPLOADED = ("a file must be uploaded to this server first (the page does it; gradio_client's handle_file "
                "does it for scripts): paths, URLs and inline data are not accepted")


def inside(path: str, folder: str) -> bool:
    """Whether `path`, with links and `..` resolved, lies inside `folder`."""
    try:
        real, root = os.path.realpath(path), os.path.realpath(folder)
    except (TypeError, ValueError, OSError):
        return False
    return os.path.commonpath([real, root]) == root


def check_file_value(value, upload_folder: str) -> str | None:
    """None if every file object in `value` (a component's payload) names an uploaded file; else why not."""
    if isinstance(value, (list, tuple)):
        return next(filter(None, (check_file_value(v, upload_folder) for v in value)), None)
    if isinstance(value, dict):
        if "path" in value or "url" in value:
            path, url = value.get("path"), value.get("url")
            if isinstance(url, str) and url.startswith("data:"):
                return NOT_UPLOADED
            if not isinstance(path, str) or not inside(path, upload_folder):
                return NOT_UPLOADED
            return None
        return next(filter(None, (check_file_value(v, upload_folder) for v in value.values())), None)
    return None


def check_route(path: str) -> tuple[int, str] | None:
    """Why a GET is refused before Gradio sees it, or None. Gradio's proxy route (for a Space's own
    files) answered 500 to a NUL byte, and its 403 for a file path echoed the whole path back."""
    if "\x00" in path:
        return 400, "the address holds a NUL byte"
    if len(path) > 2048:
        return 414, "the address is longer than 2048 characters"
    return None


def single_range(scope: dict) -> dict:
    """`scope` without a Range header that asks for several ranges (the whole file is sent instead, as
    HTTP allows): Gradio's file route answered 22 ranges with a 500 and a traceback."""
    headers = scope.get("headers") or []
    if not any(name == b"range" and b"," in value for name, value in headers):
        return scope
    return {**scope, "headers": [(name, value) for name, value in headers if name != b"range"]}


def session_of(payload) -> str | None:
    """The session a join names (the page's session hash), or None."""
    session = payload.get("session_hash") if isinstance(payload, dict) else None
    return session[:64] if isinstance(session, str) and session else None


def event_id_of(answer: bytes) -> str | None:
    """The event id in Gradio's answer to a join (`{"event_id": ...}`), or None."""
    try:
        event_id = json.loads(answer).get("event_id")
    except (ValueError, AttributeError):
        return None
    return event_id if isinstance(event_id, str) else None


def takes_files(component) -> bool:
    """Whether an input takes file values: a file component, or a `gr.api` parameter typed FileData."""
    if isinstance(component, gr.State):
        return False
    schema = getattr(component, "_api_info", None)
    if isinstance(schema, dict):
        return "gradio.FileData" in json.dumps(schema)
    return getattr(component, "data_model", None) is not None


class RequestGuard:
    """ASGI middleware; see the module docstring. `blocks` is the app (for its queue and inputs).

    trust_proxy: the app runs behind one proxy that appends the client's address to
    `X-Forwarded-For` (a Space): the right-most value is that address. Every value to its left was
    written by the client and is never trusted."""

    def __init__(self, app, *, blocks: gr.Blocks, limits: Limits, upload_folder: str, trust_proxy: bool = False,
                 stored: Callable[[int, int], None] | None = None, admission: Admission | None = None):
        """stored(bytes, files): told of each upload Gradio accepted (the disk budget's account), in a
        worker thread: it may sweep the disk. admission: the app's (`make_admission`), which
        `guard_components` also tells of every run; one of its own where none is given."""
        self.app, self.blocks, self.limits, self.stored = app, blocks, limits, stored
        self.upload_folder, self.trust_proxy = str(upload_folder), trust_proxy
        self.admission = admission or make_admission(blocks, limits)
        self._streams: dict[str, asyncio.Event] = {}  # sessions whose message stream is open -> set when it ends
        self.bodies = BodyGate(open_per_address={"upload": limits.uploads_per_address,
                                                 "request": limits.requests_per_address},
                               idle_seconds=limits.idle_body_seconds,
                               quota_bytes=limits.bytes_per_address, window_seconds=limits.bytes_window_seconds,
                               quota_files=limits.files_per_address, files_per_upload=limits.files_per_upload)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] in ("GET", "HEAD"):
            scope = single_range(scope)
            problem = check_route(scope["path"])
            session = None if problem else self.stream_session(scope)
            if problem:
                return await self.refuse(send, *problem)
            if session is not None:
                return await self.serve_stream(scope, receive, send, session)
            return await self.app(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        address = self.address(scope)
        is_upload = scope["path"].rstrip("/").endswith("/upload")
        cap = self.limits.upload_bytes + (1 << 16) if is_upload else self.limits.request_bytes  # multipart headers
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > cap:
            return await self.refuse(send, 413, self.too_large(is_upload))
        kind = "upload" if is_upload else "request"
        refusal = self.bodies.enter(address, kind, declared)
        if refusal:
            return await self.refuse(send, *refusal)
        try:
            counted = self.bodies.counted(receive, address=address, cap=cap, too_large=self.too_large(is_upload),
                                          files=is_upload)
            if is_upload:  # streamed into Gradio's parser, which writes each chunk to disk
                answer = self.stopped_status(send, counted)
                await self.app(scope, counted, answer)
                if answer.status == 200 and self.stored is not None:
                    await asyncio.to_thread(self.stored, counted.size, max(1, counted.files))
                return None
            try:
                body = await read_body(counted)
            except BodyStopped as stop:
                return await self.refuse(send, *stop.refusal)
        finally:
            self.bodies.leave(address, kind)
        if body is None:  # the client left
            return None
        return await self.pass_event(scope, body, headers, address, send)

    async def pass_event(self, scope, body: bytes, headers: dict, address: str, send):
        """Check an event's values and take its place in the queue, then hand it to Gradio."""
        match = private.EVENT.search(scope["path"])
        ticket = None
        if match and body:
            problem = self.check_event(body, match)
            if problem:
                return await self.refuse(send, *problem)
            if private.JOINS.search(scope["path"]):
                payload = json.loads(body)
                fn = self.find_fn(payload, match)
                ticket = self.admission.admit(session=session_of(payload), address=address,
                                              kind=private.fn_key(fn) if fn is not None else "?")
                if isinstance(ticket, Busy):
                    log.info("busy: %s", ticket.message[:60])
                    return await self.refuse(send, 429, ticket.message, ticket.retry_after)
        answer = {"status": None, "body": b""}

        async def watched(message):
            if ticket is not None:
                if message["type"] == "http.response.start":
                    answer["status"] = message["status"]
                elif message["type"] == "http.response.body" and len(answer["body"]) < 4096:
                    answer["body"] += message.get("body", b"")
            await send(message)

        async def replay():
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}
        joined = False
        try:
            await self.app(scope, replay, watched)
            if ticket is not None and answer["status"] == 200:
                event_id = event_id_of(answer["body"])
                self.admission.joined(ticket, event_id)
                joined = event_id is not None
                self.serve_in_turn()
        finally:
            if ticket is not None and not joined:  # refused by Gradio, failed, or the client left
                self.admission.release(ticket)
        return None

    def stream_session(self, scope) -> str | None:
        """The session whose messages a GET reads (the page's stream, or a scripted call's event,
        found as Gradio finds it), or None for any other route."""
        if private.STREAM.search(scope["path"]):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            return (query.get("session_hash") or [""])[0]
        if match := private.CALL_STREAM.search(scope["path"]):
            return private.session_of_event(self.blocks, match.group("event"))
        return None

    async def serve_stream(self, scope, receive, send, session: str):
        """Gradio's message stream for `session`, watched: when its client hangs up before the stream
        ends, the session's waiting events are dropped and its running ones marked gone at once
        (`ui.jobs` stops them at their next check). Gradio notices by itself only when it next has a
        message to send or after 10 s of none, by which time a job of a few seconds has run for nobody."""
        earlier = self._streams.get(session)
        if earlier is not None:
            # The page opens its next stream as soon as the last one has sent "close_stream", which can
            # come before that stream's answer has ended here (on a busy server, often): wait for it a
            # moment. A stream that stays open is another reader: Gradio closes a session's messages when
            # its events are done, and a second stream then raised inside a started answer (a 500 each).
            try:
                await asyncio.wait_for(earlier.wait(), STREAM_HANDOVER_SECONDS)
            except TimeoutError:
                pass
            if session in self._streams:
                return await self.refuse(send, 409, "this session's messages are already being read by another "
                                                    "connection: read them there, one stream per session")
        if not private.has_unread_events(self.blocks, session):
            # Gradio would answer 200, then raise inside the stream (an unknown session) or send
            # heartbeats for ever (a session whose events a stream has already read to the end)
            return await self.refuse(send, 404, "this session has no events whose messages are waiting: join an "
                                                "event first, then read its messages once, with the same session_hash")
        ended = self._streams[session] = asyncio.Event()
        finished = False

        def closed() -> None:  # this stream no longer holds its session (a newer one may)
            if self._streams.get(session) is ended:
                del self._streams[session]
            ended.set()

        async def watched(message):
            nonlocal finished
            # The page closes its stream as soon as it reads Gradio's last message, which can be before
            # the answer's empty last chunk has passed here: that hang-up is no leaving. Taken for one,
            # it dropped the event the page had just joined (a click the moment the last one's answer
            # came), and the page waited for it for ever.
            if message["type"] == "http.response.body" and (
                    not message.get("more_body", False) or private.CLOSE_STREAM in message.get("body", b"")):
                finished = True
            await send(message)

        async def watch():
            while (await receive())["type"] != "http.disconnect":
                pass
            if not finished:
                log.info("a client left its stream: its events are dropped")
                closed()  # the client may reconnect before Gradio notices this one has gone
                await private.drop_session(self.blocks, session)

        watcher = asyncio.create_task(watch())
        try:
            await self.app(scope, receive, watched)
        finally:
            watcher.cancel()
            closed()

    def serve_in_turn(self) -> None:
        serve_in_turn(self.blocks, self.admission)

    def is_live(self, event_id: str) -> bool:
        """Whether the event is still waiting or running in Gradio's queue (Gradio drops it from this
        table when it ends, fails, is cancelled or is cleaned up with its session)."""
        return private.is_live(self.blocks, event_id)

    @staticmethod
    def stopped_status(send, body: CountedBody):
        """`send`, giving the answer to an upload stopped while streaming the stop's own status (and
        Retry-After): Gradio's parser answers our message, but with 400 or 413 whatever the reason.
        Its `status` is then the status sent."""
        async def wrapped(message):
            if message["type"] == "http.response.start":
                if body.stopped is not None:
                    refusal = body.stopped.refusal
                    headers = [*message.get("headers", []), *retry_header(refusal.retry_after)]
                    message = {**message, "status": refusal.status, "headers": headers}
                wrapped.status = message["status"]
            await send(message)
        wrapped.status = None
        return wrapped

    def too_large(self, is_upload: bool) -> str:
        if is_upload:
            return (f"the file is larger than the {self.limits.upload_bytes / 1e6:.0f} MB upload limit: "
                    "send a smaller one")
        return (f"the request is larger than {self.limits.request_bytes >> 10} KiB: files must be uploaded, "
                "not sent inside the request")

    def check_event(self, body: bytes, match) -> tuple[int, str] | None:
        """Why the event's body is refused (a status and a message), or None: it must be a JSON object
        naming its event plainly, and every file value in it must name an upload."""
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return 400, "the request body must be JSON"
        if not isinstance(payload, dict):
            return 400, "the request body must be a JSON object with a `data` list"
        if match.group(0).startswith("/gradio_api/component_server"):
            return self.check_component_call(payload)
        index = payload.get("fn_index")
        if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
            # "3.0", " 3" or true would each be read as an event by Gradio but not matched here
            return 400, f"fn_index must be a whole number, got {str(index)[:20]!r}"
        data = payload.get("data")
        fn = self.find_fn(payload, match)
        if fn is not None and data is not None:
            if not isinstance(data, list) or len(data) != len(fn.inputs):
                # Gradio would fail with a traceback in its log before any handler ran
                got = f"{len(data)} values" if isinstance(data, list) else f"a {type(data).__name__}"
                return 400, f"this event takes a `data` list of {len(fn.inputs)} values, got {got}"
        if isinstance(data, list) and fn is not None:
            for component, value in zip(fn.inputs, data):
                if takes_files(component):
                    if value is not None and not isinstance(value, (dict, list)):
                        return 400, NOT_UPLOADED
                    problem = check_file_value(value, self.upload_folder)
                    if problem:
                        return 400, problem
        elif data is not None:  # an event we cannot map: check every file-shaped value in it
            problem = check_file_value(data, self.upload_folder)
            if problem:
                return 400, problem
        return None

    def check_component_call(self, payload: dict) -> tuple[int, str] | None:
        """A component's server function must name a component of this app that has one: Gradio looked
        the id up unchecked and answered an unknown one with a 500 and a traceback in the log."""
        component = self.blocks.blocks.get(payload.get("component_id")) if isinstance(
            payload.get("component_id"), int) else None
        name = payload.get("fn_name")
        fn = getattr(component, name, None) if component is not None and isinstance(name, str) else None
        if fn is None or not getattr(fn, "_is_server_fn", False):
            return 404, "no such component function: send a component_id and fn_name the page's config lists"
        return None

    def find_fn(self, payload: dict, match):
        name = match.group("call") or match.group("run") or match.group("api")
        if name:
            return next((fn for fn in self.blocks.fns.values() if fn.api_name == name), None)
        return self.blocks.fns.get(payload.get("fn_index"))

    def address(self, scope) -> str:
        """The client's address: the connection's, or behind a trusted proxy the one it appended."""
        if self.trust_proxy:  # several header lines are one list in order (RFC 9110): the proxy's is last
            lines = [value for name, value in scope.get("headers", ()) if name == b"x-forwarded-for"]
            values = [v.strip() for v in b",".join(lines).decode("latin-1").split(",") if v.strip()]
            if values:
                return values[-1][:64]
        return scope["client"][0] if scope.get("client") else "?"

    @staticmethod
    async def refuse(send, status: int, message: str, retry_after: int | None = None):
        body = json.dumps({"detail": message, "error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   *retry_header(retry_after)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def retry_header(seconds: int | None) -> list[tuple[bytes, bytes]]:
    """A Retry-After header saying what the refusal's message says, or none."""
    return [] if seconds is None else [(b"retry-after", str(max(1, int(seconds))).encode())]


def upload_folder() -> str:
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder())
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)
