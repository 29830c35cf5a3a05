"""What a request may carry, checked before Gradio or a handler sees it.

Gradio checks a file value's path only when the value carries its `FileData` marker, and any
event of the page can be called by hand, so a forged value could name any file on the server.
Two layers refuse that, whatever the payload's form:

- `RequestGuard`, an ASGI middleware: caps every request body as it streams (so a `data:` URL
  cannot smuggle a file past the upload limit; `ui/bodies.py`), refuses file values that were not
  uploaded to this server, and keeps one client from filling the queue (`jobs_per_client` per
  session, `jobs_per_address` per IP address, queued or running, counted on arrival:
  `ui/admission.py`).
- `guard_components`: every input component's preprocessing checks the same again, and any
  failure there becomes a message instead of a trace.
"""

import json
import logging
import os
from functools import wraps
from pathlib import Path
from urllib.parse import parse_qs

import gradio as gr

from . import gradio_private as private
from .admission import Admission
from .bodies import BodyGate, BodyStopped, CountedBody, read_body
from .limits import Limits

log = logging.getLogger("seg.app")

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

    def __init__(self, app, *, blocks: gr.Blocks, limits: Limits, upload_folder: str, trust_proxy: bool = False):
        self.app, self.blocks, self.limits = app, blocks, limits
        self.upload_folder, self.trust_proxy = str(upload_folder), trust_proxy
        self.admission = Admission(per_session=limits.jobs_per_client, per_address=limits.jobs_per_address,
                                   queue_size=limits.queue_size, is_live=self.is_live)
        self.bodies = BodyGate(open_per_address={"upload": limits.uploads_per_address,
                                                 "request": limits.requests_per_address},
                               idle_seconds=limits.idle_body_seconds,
                               quota_bytes=limits.bytes_per_address, window_seconds=limits.bytes_window_seconds)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] in ("GET", "HEAD"):
            problem = check_route(scope["path"]) or self.check_stream(scope)
            return await (self.refuse(send, *problem) if problem else self.app(scope, receive, send))
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        address = self.address(scope, headers)
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
            counted = self.bodies.counted(receive, address=address, cap=cap, too_large=self.too_large(is_upload))
            if is_upload:  # streamed into Gradio's parser, which writes each chunk to disk
                return await self.app(scope, counted, self.stopped_status(send, counted))
            try:
                body = await read_body(counted)
            except BodyStopped as stop:
                return await self.refuse(send, stop.status, stop.message)
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
                ticket = self.admission.admit(session=session_of(payload), address=address)
                if isinstance(ticket, str):
                    log.info("busy: %s", ticket[:60])
                    return await self.refuse(send, 429, ticket)
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

    def check_stream(self, scope) -> tuple[int, str] | None:
        """An event stream for a session (or a scripted call's event) Gradio does not know is refused
        here: Gradio would answer 200, then raise inside the stream, log a traceback and cut the
        connection."""
        if private.STREAM.search(scope["path"]):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            session = (query.get("session_hash") or [""])[0]
        elif match := private.CALL_STREAM.search(scope["path"]):
            event = match.group("event")  # Gradio's own lookup: the session holding it, else the id itself
            session = private.session_of_event(self.blocks, event)
        else:
            return None
        if not private.session_known(self.blocks, session):
            return 404, "no such session: join an event first, then read its messages with the same session_hash"
        return None

    def serve_in_turn(self) -> None:
        """Reorder Gradio's waiting events so that addresses are served in turn (`Admission.fair_order`).
        In the event loop's thread with no await: Gradio takes the next event in that same thread."""
        running = private.running_events(self.blocks)
        for waiting in private.waiting_lists(self.blocks):
            if len(waiting) > 1:
                waiting[:] = self.admission.fair_order(waiting, running)

    def is_live(self, event_id: str) -> bool:
        """Whether the event is still waiting or running in Gradio's queue (Gradio drops it from this
        table when it ends, fails, is cancelled or is cleaned up with its session)."""
        return private.is_live(self.blocks, event_id)

    @staticmethod
    def stopped_status(send, body: CountedBody):
        """`send`, giving the answer to an upload stopped while streaming the stop's own status: Gradio's
        parser answers our message, but with 400 or 413 whatever the reason."""
        async def wrapped(message):
            if message["type"] == "http.response.start" and body.stopped is not None:
                message = {**message, "status": body.stopped.status}
            await send(message)
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

    def find_fn(self, payload: dict, match):
        name = match.group("call") or match.group("run") or match.group("api")
        if name:
            return next((fn for fn in self.blocks.fns.values() if fn.api_name == name), None)
        return self.blocks.fns.get(payload.get("fn_index"))

    def address(self, scope, headers: dict) -> str:
        """The client's address: the connection's, or behind a trusted proxy the one it appended."""
        if self.trust_proxy:
            forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")[-1].strip()
            if forwarded:
                return forwarded[:64]
        return scope["client"][0] if scope.get("client") else "?"

    @staticmethod
    async def refuse(send, status: int, message: str):
        body = json.dumps({"detail": message, "error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 429:
            headers.append((b"retry-after", b"2"))  # a job takes about a second; a retry soon is likely to pass
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def guard_components(blocks: gr.Blocks, upload_folder: str) -> None:
    """Wrap every input component's preprocessing: file values must name uploads, and a failure
    (a value of the wrong kind) becomes a message saying what was expected. Then wrap the running of
    every event: whatever still fails outside our handlers (Gradio's own checks of a value sent by
    hand, its examples' loader) is one line in the log and a message, not a traceback."""
    for component in blocks.blocks.values():
        if not hasattr(component, "preprocess") or getattr(component, "_guarded", False):
            continue
        component.preprocess = _guarded(component, component.preprocess, str(upload_folder))
        component._guarded = True
    private.wrap_process_api(blocks, _quiet)


def _quiet(process_api):
    """Gradio's `Blocks.process_api`, with every failure a `gr.Error` that Gradio does not print."""
    @wraps(process_api)
    async def wrapper(*args, **kwargs):
        try:
            return await process_api(*args, **kwargs)
        except gr.Error as error:
            if not error.print_exception:
                raise
            log.info("refused: %s", str(error)[:200])
            raise gr.Error(str(error)[:500], print_exception=False) from None
        except Exception as error:  # noqa: BLE001 -- a value no handler saw: one line, not a trace
            log.info("refused before the handler: %s", type(error).__name__)
            raise gr.Error(f"this request could not be read ({type(error).__name__}): send the values this event "
                           "takes, as the page does", print_exception=False) from None
    return wrapper


def _guarded(component, preprocess, upload_folder: str):
    files = takes_files(component)
    label = getattr(component, "label", None) or type(component).__name__

    def wrapper(payload):
        if files and payload is not None:
            value = payload.model_dump() if hasattr(payload, "model_dump") else payload
            if not isinstance(value, (dict, list)) or check_file_value(value, upload_folder):
                raise gr.Error(NOT_UPLOADED, print_exception=False)
        try:
            return preprocess(payload)
        except gr.Error as error:  # a value outside the component's choices: a message, not a trace
            log.info("%s: %s", label, str(error)[:200])
            raise gr.Error(str(error)[:500], print_exception=False) from None
        except Exception as error:  # noqa: BLE001 -- a value of the wrong kind, or an unreadable file
            log.info("%s: unreadable input (%s)", label, type(error).__name__)
            raise gr.Error(f"{label}: the value could not be read ({type(error).__name__}); "
                           "send the kind of value this input takes", print_exception=False) from None
    return wrapper


def upload_folder() -> str:
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder())
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)
