"""SAM's prompt encoder and mask decoder as one ONNX graph: exported once per weights, run by ONNX
Runtime on the server and by onnxruntime-web in the browser, so a click costs a decode and nothing else.

    files = export_decoder(sam.model, variant="vit_t", cache_dir=Path("~/.cache/seg/sam_onnx"))
    decoder = OnnxDecoder(files.float32, threads=1)
    masks, scores, low_res = decoder(features, *prompt_arrays(points, labels, box, scale=(sx, sy)), size=(h, w))
    iou, low_res = BatchDecoder(files.batch, threads=2)(features, coords, labels)   # many point prompts at once

The graph is built by MobileSAM's `SamOnnxModel`, which exports every variant (vit_t, vit_b, vit_l,
vit_h) with the crop to the image's aspect ratio computed from `orig_im_size` at run time;
segment-anything 1.0's own wrapper freezes the crop of its dummy input into the graph, so vit_b masks
of another aspect ratio came out wrong (IoU 0.2 to 0.4 with PyTorch). It returns all four of SAM's
masks: index 0 is the single-mask output, 1 to 3 the three-mask output.

A third graph, `BatchGraph`, decodes a batch of point prompts at once and stops at the
low-resolution logits: what "find every object" (`sam_everything`) runs, where only the masks
kept are enlarged.
"""

import hashlib
import logging
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .rules import BOX_CORNER_LABELS, PADDING_LABEL

# SAM's shapes, the same for every variant: the image embedding, 256 channels on a 64x64 grid, and
# the decoder's low-resolution masks (and the mask_input it takes back), 256x256 before upsampling.
EMBEDDING_SHAPE = (1, 256, 64, 64)
LOW_RES_SIDE = 256
FORMAT = 1  # part of every cache key: bump it when the graph's inputs, outputs or options change
OPSET = 17
INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size")
OUTPUTS = ("masks", "iou_predictions", "low_res_masks")
BATCH_INPUTS, BATCH_OUTPUTS = ("image_embeddings", "point_coords", "point_labels"), ("iou", "low_res")
_export_lock = threading.Lock()  # two first users of the same weights export once


@dataclass(frozen=True)
class DecoderFiles:
    """The exported graphs of one model's weights: float32 (exact), dynamic int8 (for previews), and
    the batch graph of `BatchGraph` (automatic masks)."""

    float32: Path
    int8: Path
    batch: Path
    digest: str  # of the weights inside the graph: the cache key, and the browser's too


def weights_digest(model: nn.Module, variant: str) -> str:
    """What the graph depends on: the prompt encoder's and mask decoder's tensors, the encoder's input
    size, the variant and FORMAT. Two checkpoints with the same decoder share one export."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{FORMAT}:{variant}:{model.image_encoder.img_size}".encode())
    for part in (model.prompt_encoder, model.mask_decoder):
        for name, tensor in sorted(part.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _beside(path: Path) -> Path:
    """Where `path` is written first, then renamed into place: a reader never sees half a file."""
    return path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")


def _export(model: nn.Module, path: Path) -> None:
    """Trace the four-mask graph into `path`.

    The wrapper is put in eval mode before tracing: the exporter traces in eval mode and then restores
    the module's own mode, and a new wrapper is in training mode, so without this every module of the
    model it holds came back in training mode (batch statistics in the image encoder afterwards).
    """
    from mobile_sam.utils.onnx import SamOnnxModel  # the one wrapper that exports every variant correctly

    wrapper = SamOnnxModel(model, return_single_mask=False).eval()
    size = model.image_encoder.img_size
    dummy = (torch.randn(EMBEDDING_SHAPE), torch.randint(0, size, (1, 5, 2)).float(),
             torch.randint(0, 4, (1, 5)).float(), torch.randn(1, 1, LOW_RES_SIDE, LOW_RES_SIDE), torch.tensor([1.0]),
             torch.tensor([1500.0, 2250.0]))
    partial = _beside(path)
    with warnings.catch_warnings():  # the tracer's notes on Python control flow, harmless here
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, dummy, str(partial), input_names=list(INPUTS), output_names=list(OUTPUTS),
                          dynamic_axes={"point_coords": {1: "points"}, "point_labels": {1: "points"}},
                          opset_version=OPSET, dynamo=False)
    partial.replace(path)


def _export_batch(model: nn.Module, path: Path) -> None:
    """Trace `BatchGraph` into `path`, with the batch and the points per prompt as free axes."""
    graph = BatchGraph(model).eval()  # eval before tracing: the exporter restores the module's own mode
    dummy = (torch.randn(EMBEDDING_SHAPE), torch.rand(3, 2, 2) * model.image_encoder.img_size,
             torch.tensor([[1.0, -1.0]] * 3))
    partial = _beside(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, dummy, str(partial), input_names=list(BATCH_INPUTS), output_names=list(BATCH_OUTPUTS),
                          dynamic_axes={"point_coords": {0: "prompts", 1: "points"},
                                        "point_labels": {0: "prompts", 1: "points"}},
                          opset_version=OPSET, dynamo=False)
    partial.replace(path)


def _quantize(source: Path, path: Path) -> None:
    """Dynamic int8 weights (activations stay float): about a quarter of the bytes, faster in wasm."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = _beside(path)
    quiet = _QuantizerNotes()
    logging.getLogger().addFilter(quiet)  # it notes each tensor through the root logger: 59 lines at start
    try:
        quantize_dynamic(source, partial, weight_type=QuantType.QUInt8)
    finally:
        logging.getLogger().removeFilter(quiet)
    partial.replace(path)


class _QuantizerNotes(logging.Filter):
    """Drops ONNX Runtime's quantizer's notes below a warning; its warnings, and every other record, pass.
    A filter on the root logger sees only what is logged to the root logger itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "onnxruntime" not in record.pathname


def loads(path: Path) -> bool:
    """Whether ONNX Runtime opens the graph at `path`. A file cut short (a disk that filled during the
    export) is still a file: only loading it tells."""
    if not path.is_file():
        return False
    try:
        _session(path, threads=1)
    except Exception:  # noqa: BLE001 -- ONNX Runtime raises its own types for a broken graph
        return False
    return True


def export_decoder(model: nn.Module, *, variant: str, cache_dir: str | os.PathLike) -> DecoderFiles:
    """The float32, int8 and batch decoder graphs of `model`'s weights under `cache_dir`, exported on first use
    (a few seconds) and found there afterwards, by the weights' digest; a graph found there that does
    not load is exported again. Every module of `model` keeps the mode it had: exporting or finding
    the graph leaves the model as it was. OSError where the folder cannot be written."""
    digest = weights_digest(model, variant)
    folder = Path(cache_dir).expanduser() / f"{variant}-{digest}"
    files = DecoderFiles(folder / "decoder.onnx", folder / "decoder_int8.onnx", folder / "decoder_batch.onnx", digest)
    modes = [(module, module.training) for module in model.modules()]
    try:
        with _export_lock:
            if not loads(files.float32):
                folder.mkdir(parents=True, exist_ok=True)
                _export(model, files.float32)
            if not loads(files.int8):
                _quantize(files.float32, files.int8)
            if not loads(files.batch):
                _export_batch(model, files.batch)
    finally:
        for module, training in modes:
            module.training = training
    return files


def prompt_arrays(points: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray | None, *,
                  scale: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """SAM's sparse prompt as the graph takes it: (1, N, 2) float32 coordinates in the encoder's input
    frame and (1, N) float32 labels: 1 positive, 0 negative, 2 and 3 a box's corners, -1 padding.

    points: (P, 2) x, y in original pixels; labels: (P,) 1 or 0; box: (4,) x0, y0, x1, y1 in original
    pixels; scale: (sx, sy), input frame over original. Without a box, a padding point closes the list,
    as SAM's prompt encoder does.
    """
    coords, tags = [], []
    if points is not None:
        coords.append(np.asarray(points, np.float64).reshape(-1, 2))
        tags.append(np.asarray(labels, np.float64).reshape(-1))
    if box is not None:
        coords.append(np.asarray(box, np.float64).reshape(2, 2))
        tags.append(np.array(BOX_CORNER_LABELS, np.float64))
    else:
        coords.append(np.zeros((1, 2)))
        tags.append(np.array([PADDING_LABEL], np.float64))
    xy = np.concatenate(coords) * np.asarray(scale, np.float64)
    return xy[None].astype(np.float32), np.concatenate(tags)[None].astype(np.float32)


def embedding_float16(features: torch.Tensor | np.ndarray) -> bytes:
    """An image embedding (1, 256, 64, 64) as little-endian float16 bytes (2 MiB): what a browser
    needs to decode prompts itself, half the float32 bytes, with masks that agree (tests/test_sam_onnx.py)."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().numpy()
    return np.ascontiguousarray(features, dtype="<f2").tobytes()


class BatchGraph(nn.Module):
    """SAM's prompt encoder and mask decoder for a batch of point prompts on one image embedding,
    stopping at the low-resolution logits: the graph exported for ONNX Runtime, and the same module
    run by PyTorch where no export is at hand.

    image_embeddings: (1, 256, 64, 64); point_coords: (B, N, 2) float in the encoder's input frame;
    point_labels: (B, N) float, 1 positive, 0 negative, -1 padding. Returns iou (B, 3) and
    low_res (B, 3, 256, 256): the three-mask output, in SAM's order.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        from mobile_sam.utils.onnx import SamOnnxModel  # its point embedding takes -1 padding labels

        self.points = SamOnnxModel(model, return_single_mask=False)
        self.model = model

    def forward(self, image_embeddings, point_coords, point_labels):
        sparse = self.points._embed_points(point_coords, point_labels)  # (B, N, 256)
        dense = self.model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)  # no mask prompt
        low_res, iou = self.model.mask_decoder.predict_masks(
            image_embeddings=image_embeddings, image_pe=self.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense)
        return iou[:, 1:], low_res[:, 1:]  # index 0 is the single-mask output


def _session(path: str | os.PathLike, threads: int):
    """An ONNX Runtime session on the CPU with `threads` threads, idle threads not spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class BatchDecoder:
    """`BatchGraph`'s export in an ONNX Runtime session: (features, coords, labels) -> (iou, low_res)
    as numpy arrays, shaped as `BatchGraph.forward` says."""

    def __init__(self, path: str | os.PathLike, *, threads: int = 1):
        self.path = Path(path)
        self.session = _session(path, threads)

    def __call__(self, features: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        iou, low_res = self.session.run(list(BATCH_OUTPUTS), {
            "image_embeddings": np.ascontiguousarray(features, np.float32),
            "point_coords": np.ascontiguousarray(coords, np.float32),
            "point_labels": np.ascontiguousarray(labels, np.float32)})
        return iou, low_res


class OnnxDecoder:
    """One exported graph in an ONNX Runtime session.

    Args:
        path: the .onnx file (`DecoderFiles.float32` or `.int8`).
        threads: ONNX Runtime's threads. With spinning on, its idle threads kept the cores busy after
            each run and slowed the next torch call from 82 to 120 ms here, so spinning is off.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 1):
        self.path = Path(path)
        self.session = _session(path, threads)

    def __call__(self, features: np.ndarray, coords: np.ndarray, labels: np.ndarray, *, size: tuple[int, int],
                 mask_input: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """features: (1, 256, 64, 64) float32; coords, labels: from `prompt_arrays`; size: (H, W) of the
        masks wanted; mask_input: (256, 256) logits of an earlier mask, or None.

        Returns masks: (4, H, W) float32 logits, scores: (4,) predicted IoU, low_res: (4, 256, 256).
        """
        has_mask = mask_input is not None
        feed = {"image_embeddings": np.ascontiguousarray(features, np.float32), "point_coords": coords,
                "point_labels": labels,
                "mask_input": np.asarray(mask_input if has_mask else np.zeros((LOW_RES_SIDE, LOW_RES_SIDE)),
                                         np.float32).reshape(1, 1, LOW_RES_SIDE, LOW_RES_SIDE),
                "has_mask_input": np.array([float(has_mask)], np.float32),
                "orig_im_size": np.array(size, np.float32)}
        masks, scores, low_res = self.session.run(list(OUTPUTS), feed)
        return masks[0], scores[0], low_res[0]
