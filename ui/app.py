"""The app, built from settings: its context, its tabs, its API, its guards and its launch.

    app = build(Settings.from_environ(os.environ))   # nothing loads yet: models load on first use
    app.demo.launch(**app.launch_options())          # host and port: Gradio's, or GRADIO_SERVER_*
    app.close()                                      # its temporary folders removed

`app.compare`, `app.sam`, `app.learn` and `app.api` hold the handlers (tests call them directly).
"""

import logging
import threading
import time
from dataclasses import dataclass

import gradio as gr
import numpy as np
import torch
from starlette.middleware import Middleware

from seg.deadline import deadline
from seg.explorer.compare import run_model

from . import gradio_private
from .admission import Admission, make_admission
from .api import Api
from .component_guard import guard_components
from .connections import install as install_connection_guard
from .context import CONCURRENCY, Context
from .gpu import lease_gpus
from .guard import RequestGuard, upload_folder
from .isolation import CrossOriginIsolation
from .jobs import scrub
from .settings import Settings
from .tabs import leaderboard
from .tabs.compare import TAB_ID as COMPARE_TAB
from .tabs.compare import CompareTab
from .tabs.learn import LearnTab
from .tabs.sam import labels as sam_labels
from .tabs.sam.tab import SamTab

log = logging.getLogger("seg.app")
WARM_UP_SIZE = (360, 480)  # the blank photo the warm-up runs the models on: a CamVid frame's size
SAM_INPUT = 1024  # SAM's encoder's input side

CSS = """
.legend {display:flex; flex-wrap:wrap; gap:6px 14px; font-size:0.85rem; margin:4px 0}
.chip {display:inline-flex; align-items:center; gap:5px}
.chip i {width:14px; height:14px; border-radius:3px; display:inline-block; border:1px solid #0002}
#title h1 {margin-bottom:0}
.legend-note {margin:6px 0 2px; font-size:0.85rem}
.phone-only {display:none}
/* a focus that shows: Gradio's checkboxes and radios had a faint 1 px ring; the photo SAM is prompted on
   takes the keyboard's focus too (ui/tabs/sam/keys.js) */
input[type=checkbox]:focus-visible, input[type=radio]:focus-visible, #sam-canvas:focus-visible
  {outline:3px solid #1d4ed8 !important; outline-offset:2px}
label:has(input:focus-visible) {outline:3px solid #1d4ed8; outline-offset:1px}
/* a phone: the closer look as tall as its picture, every metric column in view; a wide table keeps its
   columns readable and scrolls sideways (with a word saying so), a chart keeps its drawn size and scrolls */
@media (max-width: 640px) {
  .phone-only {display:block}
  /* the measurements first, then the gallery of every model's pictures (21 tiles in one column) */
  #truth-note {order:-3} #metrics {order:-2} #timing {order:-1}
  .sideways {overflow-x:auto !important}
  .sideways #leaderboard {min-width:900px !important}
  .sideways .chart {min-width:760px !important}
  #look-image, #look-image * {height:auto !important; min-height:0 !important}
  #metrics th, #metrics td {padding:4px 2px !important; min-width:0 !important; font-size:0.72rem}
  /* SAM's photo as tall as it is at the screen's width, not in a 560 px box of blank space */
  #sam-canvas, #sam-canvas * {height:auto !important; min-height:0 !important; max-height:none !important}
}
/* SAM's photo is never enlarged: Gradio maps a click to pixels as if it were not, so on an enlarged
   photo the click landed away from the cursor (up to 12 px on a 480x360 photo); the browser decoder's
   overlay uses the same arithmetic */
#sam-canvas img {object-fit:scale-down !important}
""" + gradio_private.CSS + sam_labels.CSS


# Tab leaves an open dropdown closed, for the next control: Gradio kept its list (101 samples, three
# screens tall) open, sent the focus to the page's body and made the list itself the next Tab stop. The
# Tab on a dropdown is taken here: Escape closes its list, and the focus moves on in the page's order.
PAGE_JS = """() => {
  const TABBABLE = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])";
  document.addEventListener("keydown", (event) => {
    const box = document.activeElement;
    if (event.key !== "Tab" || box?.getAttribute("role") !== "combobox") return;
    event.preventDefault();  // whether or not its list has opened yet (focus opens it)
    event.stopPropagation();
    if (box.getAttribute("aria-expanded") === "true")
      box.dispatchEvent(new KeyboardEvent("keydown", {key: "Escape", bubbles: true}));
    const order = [...document.querySelectorAll(TABBABLE)].filter((e) => !e.disabled && e.tabIndex >= 0 &&
      e.getClientRects().length && !e.closest("[role=listbox]"));
    order[order.indexOf(box) + (event.shiftKey ? -1 : 1)]?.focus();
  }, true);
}"""


@dataclass
class App:
    ctx: Context
    demo: gr.Blocks
    compare: CompareTab
    sam: SamTab
    learn: LearnTab
    api: Api
    admission: Admission  # the queue's places and fair order, told of every run
    warming: threading.Thread | None = None  # the warm-up, while it runs
    sweeping: threading.Thread | None = None  # the disk's sweeps, from the first launch

    def launch_options(self) -> dict:
        """Everything `launch` needs besides host and port (the tests launch with the same); installs the
        connection guard (`ui.connections`, for every server started afterwards in this process) and starts
        the disk's sweeps on a clock (`ui.files.Outputs.keep_sweeping`, until the app closes)."""
        ctx = self.ctx
        install_connection_guard(header_seconds=ctx.limits.header_seconds,  # below HTTP: slow heads, floods
                                 per_address=None if ctx.settings.on_space else ctx.limits.connections_per_address)
        guard = Middleware(RequestGuard, blocks=self.demo, limits=ctx.limits, upload_folder=upload_folder(),
                           trust_proxy=ctx.settings.on_space,  # behind the Space's proxy, its header is true
                           stored=ctx.outputs.added,  # each upload counted against the disk budget
                           admission=self.admission)
        served = ctx.browser.served(ctx.zoo.sam_onnx_dir) if ctx.browser is not None else []  # decoder's files
        if self.sweeping is None:  # the disk is swept on a clock while the server runs, idle or not
            self.sweeping = ctx.outputs.keep_sweeping(ctx.closing)
        isolation = [Middleware(CrossOriginIsolation)] if ctx.settings.cross_origin_isolation else []
        return {"max_file_size": ctx.limits.upload_bytes, "ssr_mode": False, "css": CSS, "js": PAGE_JS,
                "theme": gr.themes.Soft(),
                "show_error": False, "allowed_paths": served, "app_kwargs": {"middleware": [guard, *isolation]}}

    def warm_up(self) -> threading.Thread:
        """Once the server answers, load the default models and SAM and run each once on a blank photo,
        in the background: the first visitor's comparison then costs what every later one does.
        Start-up itself is not delayed (the thread waits for the server first)."""
        zoo = self.ctx.zoo

        def run():
            closing = self.ctx.closing
            while not self.demo.is_running and not closing.is_set():
                time.sleep(0.2)
            started = time.perf_counter()
            blank = np.zeros((*WARM_UP_SIZE, 3), np.uint8)
            try:
                with deadline(None, "the warm-up", stop=closing.is_set):  # a stopping server stops it too
                    for key in self.ctx.default_models():
                        run_model(zoo.semantic(key), blank)
                    if zoo.sam_available() and not closing.is_set():
                        with torch.inference_mode():  # loads and warms SAM's encoder; caches no embedding
                            zoo.sam().model.image_encoder(torch.zeros(1, 3, SAM_INPUT, SAM_INPUT, device=zoo.device))
            except Exception as error:  # noqa: BLE001 -- a failed warm-up leaves the first request to load it
                log.warning("warm-up stopped: %s", scrub(str(error)))
                return
            log.info("warm-up done in %.1f s", time.perf_counter() - started)

        self.warming = threading.Thread(target=run, name="warm-up", daemon=True)
        self.warming.start()
        return self.warming

    def close(self, *, wait: float = 10) -> None:
        """Stop the running jobs at their next layer and wait for them (up to `wait` seconds: a thread
        left inside torch or ONNX Runtime at exit ends the process with "terminate called without an
        active exception"), stop serving (if it was launched) and remove the app's temporary folders."""
        self.ctx.closing.set()
        ends = time.monotonic() + wait
        if self.warming is not None:
            self.warming.join(wait)
        while gradio_private.running_events(self.demo) and time.monotonic() < ends:
            time.sleep(0.1)
        if self.demo.is_running:
            self.demo.close()
        self.ctx.close()


def handler_owners(compare: CompareTab, sam: SamTab, learn: LearnTab, api: Api) -> tuple:
    """Every object whose methods are event or endpoint handlers (`ui.jobs.handler`)."""
    return compare, sam, sam.files, sam.labels, sam.models, sam.family, learn, api


def build(settings: Settings, *, ctx: Context | None = None) -> App:
    """The app for `settings`: its context (models found, none loaded), every tab and endpoint wired,
    the guards on every input, and the queue every launch uses: CONCURRENCY jobs at once, no direct
    REST calls that would skip it, room for every client's few jobs (RequestGuard caps each client)."""
    ctx = ctx or Context.create(settings)
    compare, sam, learn, api = CompareTab(ctx), SamTab(ctx), LearnTab(ctx), Api(ctx)
    limits = ctx.limits
    for owner in handler_owners(compare, sam, learn, api):
        lease_gpus(owner, limits)  # each handler that reaches a model, for its own deadline's seconds
    keep = (limits.keep_files_seconds, limits.keep_files_seconds)  # uploads and outputs: checked and deleted hourly
    with gr.Blocks(title="Segmentation explorer", delete_cache=keep) as demo:
        gr.Markdown("# Segmentation explorer\nNetworks trained from scratch on CamVid, side by side with "
                    "SegFormer and SAM, measured against your ground truth.", elem_id="title")
        gr.Markdown(ctx.status_markdown())
        with gr.Tabs() as tabs:
            with gr.Tab("Compare", id=COMPARE_TAB, elem_id=COMPARE_TAB):
                image_in, truth_in = compare.layout()
            with gr.Tab("Prompt SAM") as tab:
                sam.layout(tab, image_in, truth_in, tabs)
            with gr.Tab("Learn") as tab:
                learn.layout(demo, tab)
            with gr.Tab("Leaderboard"):
                leaderboard.layout()
        api.declare()
    ctx.outputs.pinned = lambda: gradio_private.kept_files(demo)  # the examples' copies Gradio serves
    admission = make_admission(demo, limits, slots=CONCURRENCY)
    guard_components(demo, upload_folder(), admission)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=limits.queue_size, api_open=False)
    return App(ctx, demo, compare, sam, learn, api, admission)
