"""Every registered model: logits at the input size for any size, gradients, determinism."""

import pytest
import torch

from seg.models import MODELS, build_model, count_parameters
from seg.models.resnet import ResNet

VARIANTS = [(name, {}) for name in MODELS] + [("deeplabv3", {"output_stride": 8, "rates": (12, 24, 36)})]
SIZES = [(64, 64), (37, 53), (360, 480)]  # square, odd, CamVid (not a multiple of 32)


def small(name: str, **kwargs):
    torch.manual_seed(0)
    if name != "segformer_b0":  # SegFormer-B0 has fixed widths (it is the B0 of a published family)
        kwargs.setdefault("width_mult", 0.25)
    return build_model(name, num_classes=5, **kwargs)


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v) if isinstance(v, str) else "")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_logits_at_input_size(name, kwargs, size):
    model = small(name, **kwargs).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, *size))
    assert logits.shape == (2, 5, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_gradients_reach_the_input_and_every_parameter(name, kwargs):
    model = small(name, **kwargs).train()
    x = torch.randn(1, 3, 45, 61, requires_grad=True)  # batch of one: ASPP's pooling branch must cope
    model(x).logsumexp(1).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in model.named_parameters():
        if pname.startswith("skip_scores"):
            continue  # FCN-8s skips start at zero: their input grads are zero by design, checked below
        assert p.grad is not None, f"{pname} got no gradient"


def test_fcn8s_skips_start_as_fcn32s_and_learn():
    model = small("fcn8s").train()
    for score in model.skip_scores.values():
        assert score.weight.abs().sum() == 0
    model(torch.randn(1, 3, 64, 64)).sum().backward()
    assert all(score.weight.grad.abs().sum() > 0 for score in model.skip_scores.values())


@pytest.mark.parametrize("name,kwargs", VARIANTS, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_eval_is_deterministic(name, kwargs):
    model = small(name, **kwargs).eval()
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("output_stride,expected", [(32, [4, 8, 16, 32]), (16, [4, 8, 16, 16]), (8, [4, 8, 8, 8])])
def test_backbone_output_stride(output_stride, expected):
    backbone = ResNet(width_mult=0.25, output_stride=output_stride)
    features = backbone(torch.randn(1, 3, 128, 160))
    assert [128 // f.shape[-2] for f in features.values()] == expected
    assert list(backbone.strides.values()) == expected
    assert {k: f.shape[1] for k, f in features.items()} == backbone.out_channels


def test_width_multiplier_scales_parameters():
    narrow, wide = (count_parameters(build_model("unet", num_classes=11, width_mult=w)) for w in (0.5, 1.0))
    assert 3.5 < wide / narrow < 4.5  # conv parameters grow with the square of the width


def test_registry_errors_name_the_fix():
    with pytest.raises(ValueError, match="choose one of fcn32s, fcn8s, unet, deeplabv3"):
        build_model("segnet", num_classes=3)
    with pytest.raises(ValueError, match="does not accept"):
        build_model("unet", num_classes=3, output_stride=8)
    with pytest.raises(ValueError, match="output_stride must be 8 or 16"):
        build_model("deeplabv3", num_classes=3, output_stride=32)
