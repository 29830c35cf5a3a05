"""SAM's decoder exported to ONNX: the same masks as PyTorch for every prompt kind and aspect ratio,
exported once per weights, and a float16 embedding (what browsers get) that changes no mask."""


import logging

import numpy as np
import pytest
import torch

from seg.sam.model import ImageEmbedding, Sam
from seg.sam.onnx_decoder import OnnxDecoder, embedding_float16, export_decoder, prompt_arrays
from seg.sam.weights import sam_architecture

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)

SIZES = [(360, 480), (480, 360), (200, 900), (1024, 160)]  # landscape, portrait, very wide, very tall


def random_sam(variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return sam_architecture(variant)


def prompts(h: int, w: int) -> list[dict]:
    box = [w * 0.2, h * 0.2, w * 0.8, h * 0.7]
    return [{"points": [[w / 3, h / 2]], "labels": [1]},
            {"points": [[w / 3, h / 2], [w / 2, h / 4]], "labels": [1, 0]},
            {"box": box},
            {"points": [[w / 2, h / 2]], "labels": [1], "box": box}]


def embedding(sam: Sam, h: int, w: int, seed: int) -> ImageEmbedding:
    """An embedding of an (h, w) image without running the encoder: the decoder's comparison needs
    only features of the right shape and scale."""
    features = torch.from_numpy(np.random.default_rng(seed).normal(0, 0.5, (1, 256, 64, 64)).astype(np.float32))
    return ImageEmbedding(features=features, original_size=(h, w), input_size=sam.input_size((h, w)))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per mask of (M, H, W) bool stacks."""
    return (a & b).sum((1, 2)) / np.maximum((a | b).sum((1, 2)), 1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """vit_t (MobileSAM) and vit_b (segment-anything: vit_l and vit_h share its decoder), random weights."""
    folder = tmp_path_factory.mktemp("sam_onnx")
    built = {}
    for variant in ("vit_t", "vit_b"):
        model = random_sam(variant)
        built[variant] = (Sam(model, variant=variant),
                          Sam(model, variant=variant, onnx=export_decoder(model, variant=variant, cache_dir=folder)))
    return built


@pytest.mark.parametrize("variant", ["vit_t", "vit_b"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_onnx_runtime_gives_pytorchs_masks(models, variant, size):
    reference, exported = models[variant]
    h, w = size
    features = embedding(reference, h, w, seed=h + w)
    for prompt in prompts(h, w):
        for multimask in (True, False):
            a = reference.predict(features, **prompt, multimask=multimask)
            b = exported.predict(features, **prompt, multimask=multimask)
            assert b.masks.shape == a.masks.shape == (3 if multimask else 1, h, w)
            assert a.masks.mean() > 0.01  # random weights still draw masks: the comparison means something
            assert iou(a.masks, b.masks).min() > 0.999, (prompt, multimask)
            np.testing.assert_allclose(b.scores, a.scores, atol=1e-4)
            np.testing.assert_allclose(b.low_res_logits, a.low_res_logits, atol=1e-3)
            np.testing.assert_allclose(b.stability, a.stability, atol=1e-3)


def test_a_refinement_mask_input_is_decoded_alike(models):
    reference, exported = models["vit_t"]
    features = embedding(reference, 360, 480, seed=1)
    first = reference.predict(features, points=[[100, 100]], labels=[1])
    a = reference.predict(features, points=[[100, 100], [300, 200]], labels=[1, 1], mask_input=first.best_logits)
    b = exported.predict(features, points=[[100, 100], [300, 200]], labels=[1, 1], mask_input=first.best_logits)
    assert iou(a.masks, b.masks).min() > 0.999


def test_the_export_is_made_once_per_weights_and_reused(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    model = random_sam("vit_t")
    first = export_decoder(model, variant="vit_t", cache_dir=tmp_path)
    said = [r.getMessage() for r in caplog.records if "onnxruntime" in r.pathname and r.levelno < logging.WARNING]
    assert said == []  # ONNX Runtime's quantizer noted each tensor at INFO: 59 lines on the app's first start
    stamp = first.float32.stat().st_mtime_ns
    again = export_decoder(model, variant="vit_t", cache_dir=tmp_path)
    assert again == first and first.float32.stat().st_mtime_ns == stamp  # found, not exported again
    assert first.int8.stat().st_size < first.float32.stat().st_size / 2  # int8 weights
    with torch.no_grad():
        model.mask_decoder.iou_prediction_head.layers[0].weight.add_(1.0)  # other weights: another graph
    other = export_decoder(model, variant="vit_t", cache_dir=tmp_path)
    assert other.digest != first.digest and other.float32.parent != first.float32.parent
    assert not list(tmp_path.rglob("*.part"))  # nothing half-written left behind


def test_a_graph_cut_short_is_exported_again(tmp_path):
    """A disk that filled during the export left decoder.onnx at 1,000 bytes: every later start found
    the file and every SAM request failed. Now a graph that does not load is made again."""
    model = random_sam("vit_t")
    first = export_decoder(model, variant="vit_t", cache_dir=tmp_path)
    whole = first.float32.read_bytes()
    first.float32.write_bytes(whole[:1000])
    first.batch.write_bytes(b"")
    again = export_decoder(model, variant="vit_t", cache_dir=tmp_path)
    assert again == first and first.float32.stat().st_size == len(whole) and first.batch.stat().st_size > 0
    assert not any(module.training for module in model.modules())  # the export left it in eval mode
    features = np.random.default_rng(0).standard_normal((1, 256, 64, 64)).astype(np.float32)
    coords, labels = prompt_arrays(np.array([[100.0, 100.0]]), np.array([1]), None, scale=(1.0, 1.0))
    masks, scores, _ = OnnxDecoder(again.float32)(features, coords, labels, size=(360, 480))
    assert masks.shape == (4, 360, 480) and np.isfinite(scores).all()


def test_an_unwritable_decoder_cache_is_said_at_start(tmp_path, weights_dir):
    from seg.explorer.zoo import Zoo

    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    zoo = Zoo(weights_dir, pretrained=(), sam_onnx_dir=blocked / "sam_onnx")
    assert zoo.sam_onnx_dir is None and "cannot be written" in zoo.sam_onnx_problem
    assert "SEG_CACHE_DIR" in zoo.sam_onnx_problem
    assert not Zoo(weights_dir, pretrained=(), sam_onnx_dir=tmp_path / "fine").sam_onnx_problem


def test_float16_embedding_and_int8_decoder_agree_with_the_exact_path(models, tmp_path):
    """What browsers get: the embedding in float16 (2 MiB), decoded by the float32 graph for a click
    and by the int8 graph for a hover preview."""
    reference, exported = models["vit_t"]
    h, w = 360, 480
    image = np.random.default_rng(2).integers(0, 256, (h, w, 3), dtype=np.uint8)
    features = reference.embed(image).features  # a real embedding: its range is what float16 must hold
    data = embedding_float16(features)
    assert len(data) == 256 * 64 * 64 * 2
    half = np.frombuffer(data, dtype="<f2").astype(np.float32).reshape(1, 256, 64, 64)
    int8 = OnnxDecoder(exported.onnx.int8)
    scale = tuple(np.array(reference.input_size((h, w)))[::-1] / np.array([w, h]))
    worst_half, worst_int8 = 1.0, 1.0
    for prompt in prompts(h, w):
        arrays = prompt_arrays(prompt.get("points"), prompt.get("labels"), prompt.get("box"), scale=scale)
        exact = exported._decoder(features.numpy(), *arrays, size=(h, w))[0] > 0
        worst_half = min(worst_half, iou(exact, exported._decoder(half, *arrays, size=(h, w))[0] > 0).min())
        worst_int8 = min(worst_int8, iou(exact, int8(half, *arrays, size=(h, w))[0] > 0).min())
    print(f"float16 embedding: worst IoU {worst_half:.5f}; int8 decoder: worst IoU {worst_int8:.4f}")
    assert worst_half > 0.99  # the bar for the browser's mask against the server's
    assert worst_int8 > 0.9  # a preview: close, not exact
