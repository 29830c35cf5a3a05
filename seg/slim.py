"""Network slimming: a narrower U-Net started from a wider trained one, each layer keeping the channels
that its BatchNorm scales most (the criterion of Liu et al., 2017, "Learning Efficient Convolutional
Networks through Network Slimming").

    narrow = slim_unet(wide, width_mult=0.25)   # half the channels of a width-0.5 U-Net, the strongest

A channel that BatchNorm multiplies by almost nothing passes almost nothing on, so dropping it changes
the output least. The narrow network starts near what the wide one computes rather than at random,
and a short fine-tune (the wide network as its teacher: seg.distill) repairs what the dropped channels
carried. Every layer is cut the same way: a convolution keeps the input channels its predecessor kept
and the output channels its own BatchNorm ranks highest; a U-Net decoder level reads the encoder's kept
channels through the skip, then its upsampling's kept ones (the transposed convolution has no
BatchNorm: its filters' L1 norms rank them).
"""

import torch
from torch import Tensor, nn

from .models.layers import ConvBNReLU
from .models.unet import DoubleConv, UNet


def strongest(scales: Tensor, keep: int) -> Tensor:
    """The indices of the `keep` largest |scales|, in their original order."""
    return torch.argsort(scales.detach().abs(), descending=True, stable=True)[:keep].sort().values


def _conv_bn(wide: ConvBNReLU, narrow: ConvBNReLU, inputs: Tensor) -> Tensor:
    """Copy `wide`'s kept channels into `narrow`: inputs `inputs`, outputs its BatchNorm's strongest."""
    outputs = strongest(wide[1].weight, narrow[1].num_features)
    narrow[0].weight.copy_(wide[0].weight[outputs][:, inputs])
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(narrow[1], name).copy_(getattr(wide[1], name)[outputs])
    narrow[1].num_batches_tracked.copy_(wide[1].num_batches_tracked)
    return outputs


def _double(wide: DoubleConv, narrow: DoubleConv, inputs: Tensor) -> Tensor:
    return _conv_bn(wide[1], narrow[1], _conv_bn(wide[0], narrow[0], inputs))


@torch.no_grad()
def slim_unet(wide: UNet, width_mult: float) -> UNet:
    """A U-Net of `width_mult` (at most the wide one's) holding `wide`'s strongest channels, in eval mode."""
    depth, classes = len(wide.down), wide.classifier.out_channels
    narrow = UNet(num_classes=classes, width_mult=width_mult, depth=depth, in_channels=wide.inc[0][0].in_channels)
    for mine, theirs in zip(narrow.modules(), wide.modules()):
        if isinstance(mine, nn.BatchNorm2d) and mine.num_features > theirs.num_features:
            raise ValueError(f"width {width_mult} is wider than the network it would be cut from")
    kept = [_double(wide.inc, narrow.inc, torch.arange(wide.inc[0][0].in_channels))]
    for theirs, mine in zip(wide.down, narrow.down):
        kept.append(_double(theirs, mine, kept[-1]))
    x = kept.pop()  # the bottleneck's channels
    for theirs, mine in zip(wide.up, narrow.up):
        skip = kept.pop()
        weight = theirs.up.weight[x]  # (in, out, 2, 2): the inputs the level below kept
        up = strongest(weight.abs().sum(dim=(0, 2, 3)), mine.up.out_channels)
        mine.up.weight.copy_(weight[:, up])
        mine.up.bias.copy_(theirs.up.bias[up])
        # the wide level concatenates [skip, upsampled], each of its own width
        x = _double(theirs.conv, mine.conv, torch.cat([skip, theirs.up.out_channels + up]))
    narrow.classifier.weight.copy_(wide.classifier.weight[:, x])
    narrow.classifier.bias.copy_(wide.classifier.bias)
    return narrow.eval()
