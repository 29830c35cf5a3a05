"""Run each endpoint once at its worst case in this process and print what each added to the resident
size at its peak, as JSON {endpoint: MiB}. Started by tests/test_memory.py in a fresh interpreter,
with the app's settings in the environment; not a test module itself.

The peak is the kernel's own high-water mark (VmHWM), reset before each request through
/proc/self/clear_refs, so it counts everything: numpy, PIL, torch and ONNX Runtime alike. Before each
request the C heap hands its free pages back to the kernel (glibc's malloc_trim): otherwise a request
may reuse pages an earlier one freed but the allocator kept, and its figure depends on what ran before
it (/segment's read 0 to 131 MiB across runs).
"""

import ctypes
import gc
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def resident(pid: str = "self") -> tuple[int, int]:
    """(VmRSS, VmHWM) in bytes of this process, or of process `pid`."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) << 10, int(fields["VmHWM"].split()[0]) << 10


def added(run) -> float:
    """MiB the resident size grew at its peak while `run()` ran."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # freed heap pages back to the kernel: they count when reused
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from here
    before = resident()[0]
    run()
    return (resident()[1] - before) / 2**20


def main(folder: str) -> None:
    import os

    from tests.conftest import upload
    from ui.app import build
    from ui.settings import Settings

    app = build(Settings.from_environ(os.environ))  # the settings come from the environment the test gives
    folder = Path(folder)
    limits = app.ctx.limits
    side = int(limits.image_pixels ** 0.5)  # the largest square photo the cap lets in
    # a smooth picture: a few hundred KB of PNG, `side` x `side` pixels once decoded
    ramp = np.linspace(0, 255, side, dtype=np.float32).astype(np.uint8)
    photo = np.stack([np.broadcast_to(ramp, (side, side)), np.broadcast_to(ramp[:, None], (side, side)),
                      np.full((side, side), 90, np.uint8)], axis=-1)
    Image.fromarray(photo).save(folder / "photo.png", compress_level=1)
    del photo
    score_side = int(limits.score_pixels ** 0.5)
    labels = (np.arange(score_side * score_side, dtype=np.uint32).reshape(score_side, score_side) // 100_000 % 11)
    Image.fromarray(labels.astype(np.uint8)).save(folder / "labels.png")
    del labels
    small = folder / "small.png"
    Image.fromarray(np.zeros((90, 120, 3), np.uint8)).save(small)
    model = next(iter(app.ctx.zoo.semantic_names()))
    # warm: every model loaded, SAM's decoder exported, each path run once on a small photo
    app.api.segment(upload(str(small)), model)
    app.api.sam_prompt(upload(str(small)), "[[10, 10]]", "[1]", "")
    app.api.sam_objects(upload(str(small)), json.dumps([{"points": [[10, 10]], "labels": [1]}]))
    objects = max(1, limits.output_pixels // (side * side))  # as many as the output cap lets through
    step = side // (objects + 1)
    prompts = json.dumps([{"points": [[step * (i + 1), step * (i + 1)]], "labels": [1]} for i in range(objects)])
    big, truth = upload(folder / "photo.png"), upload(folder / "labels.png")  # uploaded before measuring
    figures = {
        "segment": added(lambda: app.api.segment(big, model)),
        "sam_prompt": added(lambda: app.api.sam_prompt(big, f"[[{side // 2}, {side // 2}]]", "[1]", "")),
        "sam_objects": added(lambda: app.api.sam_objects(big, prompts)),
        "sam_everything": added(lambda: app.api.sam_everything(big, limits.everything_grid)),
        "score": added(lambda: app.api.score(truth, truth)),
    }
    # the files were decoded in the decoder's children: their own peaks, the largest of them
    children = [str(child.process.pid) for child in app.ctx.decoder._idle]
    decoding = max(resident(pid)[1] for pid in children) / 2**20
    print(json.dumps({"side": side, "objects": objects, "MiB": figures, "decoding_MiB": decoding}))
    app.close()


if __name__ == "__main__":
    main(sys.argv[1])
