"""A hostile client of the launched app, by raw HTTP: every event the page can trigger, called the
way the page calls it (queue/join with an fn_index), with file values the client never uploaded.

Used by the security tests and the fuzzing test; not a test module itself.
"""

import base64
import json
import os
import uuid
from pathlib import Path

import httpx

MARKER = {"meta": {"_type": "gradio.FileData"}}
FILE_TYPES = {"image", "file", "gallery", "imageeditor", "video", "audio", "model3d", "annotatedimage"}


def takes_files(component: dict) -> bool:
    """Whether an input (its config) takes file values: a file component, or a `gr.api` parameter typed
    FileData (the endpoints for scripts)."""
    if component["type"] == "api":
        return "gradio.FileData" in json.dumps(component.get("api_info", {}))
    return component["type"] in FILE_TYPES


def config(server: str) -> dict:
    return httpx.get(server + "config", timeout=30).json()


def events(server: str) -> list[dict]:
    """Every dependency the page can trigger: {fn_index, api_name, inputs: [component config], ...}."""
    cfg = config(server)
    components = {c["id"]: c for c in cfg["components"]}
    out = []
    for index, dep in enumerate(cfg["dependencies"]):
        if not dep.get("backend_fn", True):
            continue
        out.append({"fn_index": dep.get("id", index), "api_name": dep.get("api_name"),
                    "api_visibility": dep.get("api_visibility"),
                    "inputs": [components[i] for i in dep["inputs"]]})
    return out


def plain_value(component: dict):
    """A harmless value of the right kind for a non-file input."""
    props = component.get("props", {})
    kind = component["type"]
    if kind in ("checkbox",):
        return False
    if kind in ("checkboxgroup",):
        return props.get("value") or []
    if kind in ("slider", "number"):
        return props.get("value") or props.get("minimum") or 0
    if kind in ("dropdown", "radio"):
        return props.get("value")
    if kind in ("textbox",):
        return ""
    return props.get("value")


def forged_values(private: Path, upload_folder: str, cwd: str) -> dict[str, object]:
    """The forms a file value can take without having been uploaded."""
    absolute = str(private)
    relative = os.path.relpath(absolute, cwd)
    dotdot = upload_folder.rstrip("/") + "/" + "/".join([".."] * 12) + absolute
    data_url = "data:image/png;base64," + base64.b64encode(private.read_bytes()).decode()
    name = {"orig_name": private.name}
    return {
        "absolute, with the marker": {"path": absolute, **name, **MARKER},
        "absolute, no marker": {"path": absolute, **name},
        "relative, no marker": {"path": relative, **name},
        "relative, with the marker": {"path": relative, **name, **MARKER},
        "dot-dot from the uploads, no marker": {"path": dotdot, **name},
        "dot-dot from the uploads, with the marker": {"path": dotdot, **name, **MARKER},
        "data: URL": {"path": None, "url": data_url, **name},
        "data: URL, with the marker": {"path": None, "url": data_url, **name, **MARKER},
        "a bare path string": absolute,
    }


def call(server: str, fn_index: int, data: list, *, session: str | None = None, timeout: float = 120,
         event_data=None) -> dict:
    """Join the queue as the page does and read the event's messages until it completes.

    Returns {"status": HTTP status of the join, "success": bool | None, "text": everything the server sent}.
    """
    session = session or uuid.uuid4().hex
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": event_data,
            "trigger_id": None}
    joined = httpx.post(server + "gradio_api/queue/join", json=body, timeout=30)
    if joined.status_code != 200:
        return {"status": joined.status_code, "success": None, "text": joined.text}
    text, success = "", None
    with httpx.stream("GET", server + "gradio_api/queue/data", params={"session_hash": session},
                      timeout=timeout) as stream:
        for line in stream.iter_lines():
            text += line + "\n"
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                success = bool(message.get("success"))
                break
            if message.get("msg") in ("close_stream", "unexpected_error"):
                break
    return {"status": 200, "success": success, "text": text}
