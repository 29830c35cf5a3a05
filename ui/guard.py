"""What a request may carry, checked before Gradio or a handler sees it.

Gradio checks a file value's path only when the value carries its `FileData` marker, and any
event of the page can be called by hand, so a forged value could name any file on the server.
Two layers refuse that, whatever the payload's form:

- `RequestGuard`, an ASGI middleware: caps every request body (so a `data:` URL cannot smuggle a
  file past the upload limit), refuses file values that were not uploaded to this server, and
  keeps one client from filling the queue (`jobs_per_client` per session, `jobs_per_address` per
  IP address, queued or running).
- `guard_components`: every input component's preprocessing checks the same again, and any
  failure there becomes a message instead of a trace.
"""

import json
import logging
import os
import re
from pathlib import Path

import gradio as gr

from seg.limits import Limits

log = logging.getLogger("seg.app")

_EVENT = re.compile(r"/gradio_api/(?:queue/join|call/(?:v2/)?(?P<call>[^/]+)|run/(?P<run>[^/]+)|api/(?P<api>[^/]+)"
                    r"|stream/[^/]+|component_server)/?$")
_JOINS = re.compile(r"/gradio_api/(?:queue/join|call/(?:v2/)?[^/]+)/?$")
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


def takes_files(component) -> bool:
    return getattr(component, "data_model", None) is not None and not isinstance(component, gr.State)


class RequestGuard:
    """ASGI middleware; see the module docstring. `blocks` is the app (for its queue and inputs)."""

    def __init__(self, app, *, blocks: gr.Blocks, limits: Limits, upload_folder: str, trust_proxy: bool = False):
        self.app, self.blocks, self.limits = app, blocks, limits
        self.upload_folder, self.trust_proxy = str(upload_folder), trust_proxy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        path = scope["path"]
        is_upload = path.rstrip("/").endswith("/upload")
        cap = self.limits.upload_bytes + (1 << 16) if is_upload else self.limits.request_bytes  # multipart headers
        headers = dict(scope["headers"])
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > cap:
            return await self.refuse(send, 413, self.too_large(is_upload))
        chunks, size, more = [], 0, True
        while more:  # chunks joined once at the end: a 20 MB upload arrives in hundreds of them
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > cap:
                return await self.refuse(send, 413, self.too_large(is_upload))
        body = b"".join(chunks)
        match = _EVENT.search(path)
        if match and body:
            problem = self.check_event(body, match, headers, scope)
            if problem:
                return await self.refuse(send, *problem)

        async def replay():
            nonlocal body
            chunk, body = body, b""
            return {"type": "http.request", "body": chunk, "more_body": False}
        return await self.app(scope, replay, send)

    def too_large(self, is_upload: bool) -> str:
        if is_upload:
            return (f"the file is larger than the {self.limits.upload_bytes / 1e6:.0f} MB upload limit: "
                    "send a smaller one")
        return (f"the request is larger than {self.limits.request_bytes >> 10} KiB: files must be uploaded, "
                "not sent inside the request")

    def check_event(self, body: bytes, match, headers: dict, scope) -> tuple[int, str] | None:
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return 400, "the request body must be JSON"
        if not isinstance(payload, dict):
            return 400, "the request body must be a JSON object with a `data` list"
        data = payload.get("data")
        fn = self.find_fn(payload, match)
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
        if _JOINS.search(scope["path"]):
            return self.check_fair(payload.get("session_hash"), self.address(scope, headers))
        return None

    def find_fn(self, payload: dict, match):
        fns = self.blocks.fns
        name = match.group("call") or match.group("run") or match.group("api")
        if name:
            return next((fn for fn in fns.values() if fn.api_name == name), None)
        index = payload.get("fn_index")
        if isinstance(index, str) and index.isdigit():  # the server would read "3" as 3
            index = int(index)
        return fns.get(index) if isinstance(index, int) and not isinstance(index, bool) else None

    def address(self, scope, headers: dict) -> str:
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")[0].strip()
        if self.trust_proxy and forwarded:
            return forwarded
        return scope["client"][0] if scope.get("client") else "?"

    def jobs(self) -> list:
        """The events queued or running now."""
        queue = self.blocks._queue
        waiting = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
        return waiting + [e for job in queue.active_jobs if job for e in job]

    def event_address(self, event) -> str:
        request = getattr(event, "request", None)
        if request is None:
            return "?"
        headers = {k.encode("latin-1"): v.encode("latin-1") for k, v in request.headers.items()}
        return self.address({"client": (request.client.host,) if request.client else None}, headers)

    def check_fair(self, session, address: str) -> tuple[int, str] | None:
        jobs = self.jobs()
        mine = sum(1 for e in jobs if session and e.session_hash == session)
        if mine >= self.limits.jobs_per_client:
            log.info("busy: session has %d jobs", mine)
            return 429, (f"busy: you already have {mine} requests queued or running (the limit is "
                         f"{self.limits.jobs_per_client}); retry when one has finished")
        near = sum(1 for e in jobs if self.event_address(e) == address)
        if near >= self.limits.jobs_per_address:
            log.info("busy: address has %d jobs", near)
            return 429, (f"busy: {near} requests from your address are queued or running (the limit is "
                         f"{self.limits.jobs_per_address}); retry when one has finished")
        return None

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
    (a value of the wrong kind) becomes a message saying what was expected."""
    for component in blocks.blocks.values():
        if not hasattr(component, "preprocess") or getattr(component, "_guarded", False):
            continue
        component.preprocess = _guarded(component, component.preprocess, str(upload_folder))
        component._guarded = True


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
        except gr.Error:
            raise
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
