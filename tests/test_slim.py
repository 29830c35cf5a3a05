"""Network slimming (seg.slim, seg.cli.train --init-from a wider U-Net): which channels are kept, and that
the narrow network computes what the wide one did when the dropped channels carried nothing."""

import json

import pytest
import torch

from conftest import run_module
from seg.models.unet import UNet
from seg.slim import slim_unet, strongest


def random_unet(width: float, seed: int = 0) -> UNet:
    """A U-Net with random weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = UNet(num_classes=5, width_mult=width)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2)
    return net.eval()


def test_the_strongest_are_the_largest_magnitudes_in_their_order():
    assert strongest(torch.tensor([0.1, -3.0, 2.0, 0.0, -0.5]), 3).tolist() == [1, 2, 4]
    assert strongest(torch.ones(4), 4).tolist() == [0, 1, 2, 3]


def test_at_its_own_width_the_network_is_copied_whole():
    wide = random_unet(0.5)
    same = slim_unet(wide, 0.5)
    x = torch.randn(2, 3, 45, 61)  # odd sizes: the decoder crops what the pooling's ceil added
    assert not same.training and torch.equal(same(x), wide(x))


def test_a_narrow_network_computes_what_the_wide_one_did_without_its_silent_channels():
    """Half of every level's channels silenced in the wide network (their BatchNorm scale and shift 0, the
    transposed convolutions' outputs 0): cut to half the width, the narrow network keeps exactly the live
    ones and gives the wide network's logits."""
    wide = random_unet(0.5, seed=1)
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for module in wide.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                silent = torch.randperm(module.num_features, generator=generator)[: module.num_features // 2]
                module.weight[silent] = 0
                module.bias[silent] = 0
            elif isinstance(module, torch.nn.ConvTranspose2d):
                silent = torch.randperm(module.out_channels, generator=generator)[: module.out_channels // 2]
                module.weight[:, silent] = 0
                module.bias[silent] = 0
    narrow = slim_unet(wide, 0.25)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in wide.parameters()) / 3
    x = torch.randn(2, 3, 48, 64)
    assert torch.allclose(narrow(x), wide(x), atol=1e-4)
    # the dropped channels woken a little (still the weakest, so the same are kept): now they carried
    # something, and the narrow network no longer gives the wide one's logits: the comparison can tell
    with torch.no_grad():
        for module in wide.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight[module.weight == 0] = 0.2
    again = slim_unet(wide, 0.25)
    assert torch.equal(again(x), narrow(x)) and not torch.allclose(again(x), wide(x), atol=1e-3)


def test_a_network_is_not_cut_wider_than_it_is():
    with pytest.raises(ValueError, match="wider than the network"):
        slim_unet(random_unet(0.25), 0.5)


@pytest.mark.slow
def test_training_from_a_wider_unet_starts_from_its_slimmed_weights(trained_checkpoint, tmp_path):
    out = tmp_path / "narrow"
    done = run_module("seg.cli.train", "--model", "unet", "--width-mult", "0.125", "--synthetic-images", "64",
                      "--image-size", "64", "64", "--batch-size", "16", "--workers", "0", "--no-progress",
                      "--epochs", "1", "--init-from", str(trained_checkpoint), "--out", str(out))
    assert "(width 0.25), cut to width 0.125" in done.stdout + done.stderr
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"]["arguments"] == {"width_mult": 0.125}
    assert card["training"]["slimmed_from_width"] == 0.25 and card["training"]["init_from"] == str(trained_checkpoint)
    failed = run_module("seg.cli.train", "--model", "unet", "--width-mult", "0.5", "--synthetic-images", "64",
                        "--image-size", "64", "64", "--epochs", "1", "--init-from", str(trained_checkpoint),
                        "--out", str(tmp_path / "wider"), check=False)
    assert failed.returncode != 0 and "give the same --model, --width-mult and data" in failed.stderr
