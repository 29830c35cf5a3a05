"""What the Prompt SAM tab sends a browser so that it decodes prompts itself (ui/tabs/sam/live.js):
onnxruntime-web (its pinned CDN copy, integrity-checked, or a local folder), SAM's exported decoder,
and one float16 image embedding per photo, each as a URL that the app serves (`served`)."""

import os
import threading
from pathlib import Path
from urllib.parse import quote

import numpy as np

from seg.cache import BoundedCache
from seg.data.photos import image_digest
from seg.sam.model import Sam
from seg.sam.onnx_decoder import EMBEDDING_SHAPE, LOW_RES_SIDE, embedding_float16
from seg.sam.rules import rules

from ...gradio_private import open_event

ORT_WEB_VERSION = "1.30.0"
ORT_WEB_SCRIPT = "ort.wasm.min.js"  # the wasm-only build (50 KB) that defines a global `ort`
# sha384 of dist/ort.wasm.min.js in the npm package onnxruntime-web@1.30.0; jsDelivr serves the npm
# files unchanged, and tests/test_browser_sam.py checks this against the package CI installs.
ORT_WEB_INTEGRITY = "sha384-Bw6URI+Gvoadw0do7/QrSHUC9D1vCYYK5OSqChFyhyV5mzPL4oe2rOAFljAnS8Sq"
ORT_WEB_CDN = f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ORT_WEB_VERSION}/dist/"
SCRIPTS = Path(__file__).parent  # the page's scripts: prompt.js and page.js, shared by live.js and keys.js


def page_script(name: str) -> str:
    """The page script `name` (live.js, keys.js) as a gr.HTML's `js_on_load` runs it: after the pure
    prompt.js and the page helpers of page.js, in one function of its own."""
    return "\n".join((SCRIPTS / part).read_text() for part in ("prompt.js", "page.js", name))


def served_url(path: Path) -> str:
    """The URL of a file the app serves (its folder is in `launch(allowed_paths=...)`), relative to
    the page, so it also works behind a Space's proxy."""
    return "gradio_api/file=" + quote(str(Path(path).resolve()))


class BrowserSam:
    """The browser decoder's files, for one server.

    Args:
        folder: where embeddings are written for browsers to fetch; served, so nothing else goes there.
        runtime_dir: onnxruntime-web's dist folder to serve, or None for its CDN copy.
        keep: embeddings kept on disk (2 MiB each), the least recently used removed first.
        clicks_per_object: the server's cap, sent with the prompt's rules: the page does not decode a
            click the server will refuse.
    """

    def __init__(self, folder: str | os.PathLike, *, runtime_dir: str | os.PathLike | None = None, keep: int = 64,
                 clicks_per_object: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.runtime_dir = Path(runtime_dir) if runtime_dir is not None else None
        self.clicks_per_object = clicks_per_object
        # the files written, by name: the least recently used removed from disk past `keep`
        self._files: BoundedCache[str, Path] = BoundedCache(capacity=keep,
                                                            on_drop=lambda name, path: path.unlink(missing_ok=True))

    def served(self, sam_onnx_dir: str | os.PathLike | None) -> list[str]:
        """The folders `launch` must allow: the embeddings, the exported decoders (None: not exported),
        the local runtime."""
        folders = [self.folder] + ([Path(sam_onnx_dir)] if sam_onnx_dir else []) \
            + ([self.runtime_dir] if self.runtime_dir else [])
        return [str(p.resolve()) for p in folders]

    def runtime(self) -> dict:
        """Where the page loads onnxruntime-web from: {script, integrity, base, version}."""
        if self.runtime_dir is None:
            return {"script": ORT_WEB_CDN + ORT_WEB_SCRIPT, "integrity": ORT_WEB_INTEGRITY, "base": ORT_WEB_CDN,
                    "version": ORT_WEB_VERSION}
        return {"script": served_url(self.runtime_dir / ORT_WEB_SCRIPT), "integrity": None,
                "base": served_url(self.runtime_dir) + "/", "version": ORT_WEB_VERSION}

    def embedding(self, sam: Sam, image: np.ndarray, *, compute: bool, digest: str | None = None) -> str | None:
        """The URL of `image`'s float16 embedding: written now (computing the embedding if `compute`,
        once per photo through SAM's cache), or None when it is not there and `compute` is False.
        digest: `image_digest(image)` when the caller has it already."""
        digest = digest or image_digest(image)
        name = f"{sam.variant}-{sam.onnx.digest}-{digest}.f16"
        if not compute:
            path = self._files.get(name)
            return served_url(path) if path is not None else None
        return served_url(self._files.get_or_make(name, lambda: self._write(sam, image, digest, name)))

    def _write(self, sam: Sam, image: np.ndarray, digest: str, name: str) -> Path:
        path = self.folder / name
        data = embedding_float16(sam.embed(image, digest=digest).features)
        partial = path.with_suffix(f".{threading.get_ident()}.part")
        partial.write_bytes(data)
        partial.replace(path)  # a browser never fetches half a file
        return path

    def value(self, sam: Sam | None, image: np.ndarray | None, clicks, *, compute: bool = False,
              digest: str | None = None) -> dict | None:
        """The browser decoder's value (see ui/tabs/sam/live.js): None without SAM's exported decoder; the
        runtime and decoder alone without a photo. digest: `image_digest(image)` where known."""
        if sam is None or sam.onnx is None:
            return None
        value = {"runtime": self.runtime(),
                 "decoder": {"float32": served_url(sam.onnx.float32), "int8": served_url(sam.onnx.int8)},
                 "rules": rules(self.clicks_per_object),  # how clicks become SAM's prompt: the server's schema
                 "shapes": {"embedding": list(EMBEDDING_SHAPE), "low_res": LOW_RES_SIDE},
                 "busy": open_event("sam-note")}  # the server is still answering the last click
        if image is None:
            return value
        h, w = image.shape[:2]
        photo = digest or image_digest(image)
        return {**value, "photo": photo, "size": [h, w], "input": list(sam.input_size((h, w))),
                "embedding": self.embedding(sam, image, compute=compute, digest=photo),
                "clicks": [list(c) for c in clicks]}
