"""Every event handler runs as a job: with a deadline, stopped when its client has gone, and with any
failure turned into one message for the user and one line in the log (never a traceback, never a
server path).

    @job(LIMITS.segment_seconds, "segmenting")
    def api_segment(image_path, model): ...
"""

import inspect
import logging
import re
import threading
import traceback
from dataclasses import dataclass
from functools import wraps

import gradio as gr

from seg.deadline import DeadlineExceeded, Stopped, deadline

from . import gradio_private as private

log = logging.getLogger("seg.app")

# An absolute path (two or more segments) anywhere in a message: shown by its last segment only.
# Not inside a URL: a path starts at the start, or after a space, a quote or a bracket.
_PATH = re.compile(r"(?<![\w:/.\\])(?:[A-Za-z]:)?(?:[/\\][^\s/\\'\"()\[\]{}:,]+){2,}")


def scrub(message: str, limit: int = 500) -> str:
    """`message` without server paths (each becomes its file name) and at most `limit` characters."""
    message = _PATH.sub(lambda m: re.split(r"[/\\]", m.group(0))[-1], message)
    return message if len(message) <= limit else message[:limit] + "…"


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    return f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"


def job(seconds: float | None, what: str, *, closing: threading.Event | None = None):
    """Run the handler under a deadline of `seconds`, stopped at its next check once its client has
    gone or `closing` is set (the server is stopping); turn every failure into a `gr.Error`: the
    library's ValueError / FileNotFoundError and a passed deadline as their own message, anything else
    as a short one that names the error's type. Each failure logs one line."""
    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            gone = private.client_gone()
            stop = gone if closing is None else (lambda: closing.is_set() or (gone is not None and gone()))
            try:
                with deadline(seconds, what, stop=stop):
                    return fn(*args, **kwargs)
            except Stopped as error:  # nobody is left to read a message
                stopping = closing is not None and closing.is_set()
                log.info("%s stopped: %s", fn.__qualname__,
                         "the server is stopping" if stopping else "its client has gone")
                raise gr.Error(str(error), print_exception=False) from None
            except gr.Error as error:
                log.info("%s refused: %s", fn.__qualname__, scrub(str(error), 200))
                raise
            except (ValueError, FileNotFoundError, DeadlineExceeded) as error:
                message = scrub(str(error))
                if isinstance(error, DeadlineExceeded):  # a shared server: other jobs may have slowed this one
                    message += ", or retry when the server is less busy"
                log.info("%s refused: %s", fn.__qualname__, message[:200])
                raise refusal(message) from None
            except Exception as error:  # noqa: BLE001 -- a bug or an input nobody foresaw: one line, not a trace
                log.warning("%s failed: %s at %s: %s", fn.__qualname__, type(error).__name__, _where(error),
                            scrub(str(error), 200))
                raise gr.Error(f"{what} failed ({type(error).__name__}): an error on the server's side, logged "
                               "there; nothing was changed. Retrying the same input will not help: please report "
                               "it", print_exception=False) from None
        return wrapper
    return decorate


def refusal(message: str) -> gr.Error:
    """A refusal as the page shows it: kept on screen until the person closes it (Gradio's default toast
    vanished after 10 s, leaving only a bare "Error" on the output)."""
    return gr.Error(message, duration=None, print_exception=False)


@dataclass(frozen=True)
class Declared:
    """What a handler declares, once: its deadline (the name of a `Limits` field, read when it runs),
    what it does (for messages), and whether it reaches a model (then, on ZeroGPU, it runs with a GPU
    lent for its deadline's seconds: `ui.gpu.lease_gpus`)."""
    limit: str
    what: str
    models: bool


def handler(limit: str, what: str, *, models: bool):
    """`job` for a method of a tab or of the API: its deadline is `self.ctx.limits.<limit>` (the app's
    own limits, read when it runs), e.g. `@handler("sam_seconds", "SAM", models=True)`. Gradio still
    sees the method's own parameters (a `gr.Progress` default, a `gr.SelectData` hint)."""
    declared = Declared(limit, what, models)

    def decorate(method):
        @wraps(method)
        def wrapper(self, *args, **kwargs):
            run = job(getattr(self.ctx.limits, limit), what, closing=self.ctx.closing)(method)
            return run(self, *args, **kwargs)
        wrapper.declared = declared
        return wrapper
    return decorate


def handlers(owner) -> dict[str, Declared]:
    """Each handler method of `owner` (a tab or the API) by name, with what it declares."""
    return {name: fn.declared for name, fn in inspect.getmembers(type(owner), inspect.isfunction)
            if isinstance(getattr(fn, "declared", None), Declared)}
