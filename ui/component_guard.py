"""The second layer of the guard, on Gradio's side of the request: every input component's
preprocessing checks its value again (file values must name uploads, an image is judged by its
structure before Gradio opens it), and every event's run is timed for the fair queue and kept from
printing a traceback.

    guard_components(demo, upload_folder(), admission)   # once, when the app is built

Pillow decodes some formats on open (an ICO's embedded PNG) and Gradio opens an image component's
file in its preprocessing, in a thread that no deadline reaches: `seg.data.screen` refuses such a
file first.
"""

import logging
import time
from collections.abc import Callable
from functools import wraps

import gradio as gr

from seg.data.screen import PHOTO_FORMATS, screen

from . import gradio_private as private
from .admission import Admission, serve_in_turn
from .guard import NOT_UPLOADED, check_file_value, takes_files

log = logging.getLogger("seg.app")


def guard_components(blocks: gr.Blocks, upload_folder: str, admission: Admission | None = None) -> None:
    """Wrap every input component's preprocessing: file values must name uploads, and a failure
    (a value of the wrong kind) becomes a message saying what was expected. Then wrap the running of
    every event: whatever still fails outside our handlers (Gradio's own checks of a value sent by
    hand, its examples' loader) is one line in the log and a message, not a traceback; and each
    run's seconds go to `admission` (the address is charged, the kind's cost learned, the waiting
    events reordered before Gradio takes the next)."""
    for component in blocks.blocks.values():
        if not hasattr(component, "preprocess") or getattr(component, "_guarded", False):
            continue
        component.preprocess = _guarded(component, component.preprocess, str(upload_folder))
        component._guarded = True

    def ran(event: str | None, seconds: float) -> None:
        if admission is not None and event:
            admission.ran(event, seconds)
            serve_in_turn(blocks, admission)
    private.wrap_process_api(blocks, lambda process_api: _quiet(process_api, ran))


def _quiet(process_api, ran: Callable[[str | None, float], None]):
    """Gradio's `Blocks.process_api`, with every failure a `gr.Error` that Gradio does not print, and
    its seconds told to `ran` with its event id."""
    @wraps(process_api)
    async def wrapper(*args, **kwargs):
        started = time.monotonic()
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
        finally:
            ran(kwargs.get("event_id"), time.monotonic() - started)
    return wrapper


def _guarded(component, preprocess, upload_folder: str):
    files = takes_files(component)
    label = getattr(component, "label", None) or type(component).__name__

    def wrapper(payload):
        if files and payload is not None:
            value = payload.model_dump() if hasattr(payload, "model_dump") else payload
            if not isinstance(value, (dict, list)) or check_file_value(value, upload_folder):
                raise gr.Error(NOT_UPLOADED, print_exception=False)
            if isinstance(component, gr.Image) and isinstance(value, dict) and value.get("path"):
                try:
                    screen(value["path"], formats=PHOTO_FORMATS)
                except ValueError as error:  # the message names the file by its name alone
                    log.info("%s: %s", label, str(error)[:200])
                    raise gr.Error(f"{label}: {str(error)[:400]}", duration=None,  # kept until closed, as every refusal
                                   print_exception=False) from None
                except OSError:
                    raise gr.Error(f"{label}: the file could not be read: upload it again", duration=None,
                                   print_exception=False) from None
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
