"""Segmentation explorer: compare networks trained from scratch with SegFormer, prompt SAM, learn
how the architectures differ, and read the leaderboard. The app lives in `ui/`, the library in `seg/`.

    python app.py          # http://127.0.0.1:7860, offline, on the weights in weights/

Settings come from the environment, read here once (the README's "Settings" table lists them);
GRADIO_SERVER_NAME/PORT are Gradio's own.
"""

import logging
import os
import signal
import sys

import torch

from ui.app import build
from ui.context import CONCURRENCY
from ui.memory import trim_every
from ui.settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_environ(os.environ)
    for note in settings.notes:
        logging.getLogger("seg.app").info(note)
    # a Space stops the app with SIGTERM: exit normally, so that the temporary folders are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # CONCURRENCY jobs share the cores: each gets its share of threads instead of all fighting for all
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // CONCURRENCY))
    trim_every(60)  # a big job's freed memory goes back to the OS instead of staying with idle threads
    app = build(settings)
    try:
        app.warm_up()
        app.demo.launch(**app.launch_options())  # host and port: 127.0.0.1:7860, or GRADIO_SERVER_* (Spaces)
    finally:
        app.close()


if __name__ == "__main__":
    main()
