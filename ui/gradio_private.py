"""Every private part of Gradio the app relies on, in one place, checked by `problems` (and by
tests/test_gradio_private.py): a Gradio release that renames one fails that test with the name,
instead of the guards failing quietly in production.

Used: the queue's waiting lists, running jobs, live events and sessions (`Blocks._queue`), an
event's `_id` and `alive` (false once its client's stream has closed), the event running in the
calling thread (`gradio.context.LocalContext`), the queue's `clean_events`, the components'
`keep_in_cache`, `Blocks.process_api` (wrapped so that no failure prints a traceback), the routes'
paths (matched by the request guard), the stream's last message ("close_stream"), and CSS on the
frontend's internal class names.
"""

import re
from collections.abc import Callable
from pathlib import Path

import gradio as gr

TESTED_WITH = "6.31.0"  # the Gradio release these names were read from

# The routes a request guard recognises (Gradio's paths under /gradio_api)
EVENT = re.compile(r"/gradio_api/(?:queue/join|call/(?:v2/)?(?P<call>[^/]+)|run/(?P<run>[^/]+)|api/(?P<api>[^/]+)"
                   r"|stream/[^/]+|component_server)/?$")
STREAM = re.compile(r"/gradio_api/queue/data/?$")
CALL_STREAM = re.compile(r"/gradio_api/call/(?:v2/)?[^/]+/(?P<event>[^/]+)/?$")
# Gradio's last message on a session's stream (its events are done; the page closes the stream on reading it)
CLOSE_STREAM = b'"msg":"close_stream"'
JOINS = re.compile(r"/gradio_api/(?:queue/join|call/(?:v2/)?[^/]+)/?$")
ROUTES = ("/gradio_api/queue/join", "/gradio_api/queue/data", "/gradio_api/upload")  # checked on a live server

QUEUE_ATTRIBUTES = ("event_queue_per_concurrency_id", "active_jobs", "event_ids_to_events",
                    "pending_messages_per_session", "pending_event_ids_session")

# CSS on the frontend's internal class names (the app's own elem_ids are ours): galleries that grow
# with their tiles, captions that wrap, SAM's three masks side by side; and the status tracker's
# `hide`, which a progress overlay loses while its event is open.
INTERNAL_CLASSES = ("grid-wrap", "gallery-container", "caption-label", "grid-container", "thumbnail-item",
                    "hide", "error", "header", "cell-wrap", "filename", "stem")


def open_event(elem_id: str) -> str:
    """A CSS selector that matches while an event showing its progress on `elem_id` is still open.
    Gradio drops a trigger of an event that is still open (trigger_mode "once"), even after its
    outputs are on screen. A refused event leaves its tracker shown too, saying "Error": that one is
    closed, and a click after it is answered."""
    return f"#{elem_id} .wrap:not(.hide):not(:has(.error))"
CSS = """
/* galleries that grow with their tiles: every tile in view, none scrolled away inside a box */
#predictions .grid-wrap, #scene-preds .grid-wrap, #race-preds .grid-wrap, #sam-masks .grid-wrap
  {max-height:none; min-height:0; height:auto}
#predictions .gallery-container, #scene-preds .gallery-container, #race-preds .gallery-container,
  #sam-masks .gallery-container {height:auto}
/* captions wrap instead of ending in an ellipsis ("DeepLabv3 (ASPP) · 230 ..." was cut, and Learn's lost
   their IoU figures on a phone) */
#predictions .caption-label, #scene-preds .caption-label, #race-preds .caption-label {white-space:normal;
  max-width:96%}
/* tables: a header breaks between words, never inside one ("param s (M)"); a cell wraps instead of being
   cut ("262" for 2626 ms on a phone) */
th .header {word-break:normal !important; overflow-wrap:normal !important; hyphens:none}
td .cell-wrap {white-space:normal !important; overflow-wrap:break-word}
/* a download's whole name, wrapped: every file read "camvid_... .png" */
.filename {overflow:visible !important}
.filename .stem {white-space:normal !important; overflow:visible !important; text-overflow:clip !important;
  overflow-wrap:anywhere}
/* SAM's three masks side by side, each in the photo's own shape and as tall as it needs */
#sam-masks .grid-container {grid-template-rows:none !important; grid-auto-rows:auto !important;
  padding-top:2.2rem !important}  /* below the gallery's floating label, not under it */
#sam-masks .thumbnail-item {aspect-ratio:auto !important; height:auto !important; overflow:visible !important}
#sam-masks .thumbnail-item img {aspect-ratio:4/3; height:auto !important}
/* its captions under the tiles, whole: over a 120 px tile they covered the mask and were cut */
#sam-masks .caption-label {position:static !important; max-width:none !important; white-space:normal !important;
  display:block; border:none !important; background:none !important; text-align:center}
/* a phone: one prediction per row at the screen's width; SAM's three masks side by side under the photo
   (beside it on a wider screen, one above the other) */
@media (max-width: 640px) {
  #predictions .grid-container {grid-template-columns:1fr !important}
  #sam-masks .grid-container {grid-template-columns:repeat(3, 1fr) !important}
}
"""


def queue(blocks: gr.Blocks):
    return blocks._queue


def waiting_lists(blocks: gr.Blocks) -> list[list]:
    """The queue's waiting events, one list per concurrency group, oldest first (reorderable in place)."""
    return [waiting.queue for waiting in queue(blocks).event_queue_per_concurrency_id.values()]


def running_events(blocks: gr.Blocks) -> list:
    return [event for job in queue(blocks).active_jobs if job for event in job]


def event_id(event) -> str:
    return event._id


def fn_key(fn) -> str:
    """A name for an event's function that stays the same across runs: its API name, else its index."""
    return fn.api_name or f"fn{fn._id}"


def is_live(blocks: gr.Blocks, event: str) -> bool:
    """Whether the event is still waiting or running (Gradio drops it when it ends, fails, is
    cancelled or is cleaned up with its session)."""
    return event in queue(blocks).event_ids_to_events


def client_gone() -> Callable[[], bool] | None:
    """For the event whose handler runs in the calling thread: a probe (a flag read, cheap enough for
    every layer) that answers True once its client has gone. Gradio marks a running event not alive
    when its client's message stream closes (`Queue.clean_events`), through the page's queue and
    scripts' /call alike, but lets its handler run on. None outside an event."""
    from gradio.context import LocalContext

    blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
    queued = getattr(blocks, "_queue", None)
    event = queued.event_ids_to_events.get(event_id) if queued is not None and event_id else None
    if event is None:
        return None
    return lambda: not event.alive


async def drop_session(blocks: gr.Blocks, session: str) -> None:
    """What Gradio does when it notices a session's stream has closed: its waiting events leave the
    queue and its running ones are marked not alive."""
    await queue(blocks).clean_events(session_hash=session)


def describe_api_inputs(api_name: str, descriptions: dict[str, str]) -> None:
    """Each input of the `gr.api` endpoint `api_name`, just declared in the Blocks being built, labelled
    with its parameter's name and described by `descriptions[name]` on the "Use via API" page: Gradio
    labels them "1st", "2nd" and says nothing else."""
    from gradio.context import get_blocks_context
    from gradio.utils import get_function_params

    fn = next(f for f in get_blocks_context().fns.values() if f.api_name == api_name)
    for component, (name, *_) in zip(fn.inputs, get_function_params(fn.fn)):
        component.label = name
        component._api_info = {**component._api_info, "additional_description": descriptions.get(name, "")}


def kept_files(blocks: gr.Blocks) -> set[str]:
    """The files Gradio keeps in its cache for as long as it runs (each component's `keep_in_cache`:
    the examples' copies), which its own cache deletion never removes."""
    return {str(path) for block in blocks.blocks.values() for path in getattr(block, "keep_in_cache", ())}


def has_unread_events(blocks: gr.Blocks, session: str) -> bool:
    """Whether some event of the session has messages no stream has read to the end yet (Gradio
    forgets an event once a stream has read its last message)."""
    return bool(queue(blocks).pending_event_ids_session.get(session))


def session_of_event(blocks: gr.Blocks, event: str) -> str:
    """The session holding a scripted call's event (Gradio's own lookup), else the id itself."""
    return next((s for s, ids in queue(blocks).pending_event_ids_session.items() if event in ids), event)


def wrap_process_api(blocks: gr.Blocks, wrap: Callable) -> None:
    """Run every event through `wrap(Blocks.process_api)`, once."""
    if not getattr(blocks, "_seg_wrapped", False):
        blocks.process_api = wrap(blocks.process_api)
        blocks._seg_wrapped = True


def frontend_text() -> str:
    """Gradio's built frontend (its JavaScript and CSS), where the internal class names are defined."""
    root = Path(gr.__file__).parent / "templates"
    return "".join(p.read_text(errors="ignore") for p in root.rglob("*") if p.suffix in (".js", ".css"))


def problems(blocks: gr.Blocks) -> list[str]:
    """Each private part of Gradio used here that `blocks` (a queued app) or the installed Gradio
    lacks, named, with the release the app was built for; empty when all are there."""
    found = []
    if not hasattr(blocks, "_queue"):
        found.append("Blocks._queue (the event queue)")
    else:
        found += [f"Blocks._queue.{name}" for name in QUEUE_ATTRIBUTES if not hasattr(blocks._queue, name)]
    if not callable(getattr(blocks, "process_api", None)):
        found.append("Blocks.process_api")
    from gradio.queueing import Event

    for name in ("_id", "alive"):
        if name not in getattr(Event.__init__, "__code__", None).co_names:
            found.append(f"gradio.queueing.Event.{name}")
    from gradio.context import LocalContext

    found += [f"gradio.context.LocalContext.{name}" for name in ("blocks", "event_id")
              if not hasattr(LocalContext, name)]
    import orjson
    from gradio.server_messages import CloseStreamMessage

    if CLOSE_STREAM not in orjson.dumps(CloseStreamMessage().model_dump()):
        found.append("gradio.server_messages.CloseStreamMessage as CLOSE_STREAM")
    text = frontend_text()
    found += [f"CSS class .{name} in Gradio's frontend" for name in INTERNAL_CLASSES if name not in text]
    return [f"{name} (the app was built for Gradio {TESTED_WITH}; installed: {gr.__version__})" for name in found]
