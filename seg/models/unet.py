"""U-Net (Ronneberger et al., 2015): an encoder-decoder that concatenates every encoder level into the decoder."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ConvBNReLU, scaled


class DoubleConv(nn.Sequential):
    """Two 3x3 conv-BN-ReLU: the unit of every U-Net level."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(ConvBNReLU(in_channels, out_channels), ConvBNReLU(out_channels, out_channels))


class Up(nn.Module):
    """Learned 2x upsampling, then the skip from the encoder concatenated, then a DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * out_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        h, w = skip.shape[-2:]
        # The encoder pooled with ceil_mode, so 2x the coarse size is the skip's size or one more: crop.
        x = self.up(x)[..., :h, :w]
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """U-Net with `depth` poolings; level i has `32 * 2**i * width_mult` channels.

    Every decoder level sees the encoder's features of the same resolution, so fine boundaries
    lost by pooling come back through the skips instead of being guessed from coarse scores.

    forward: `x (B, 3, H, W) float` -> logits `(B, num_classes, H, W)`, any H and W.
    """

    def __init__(self, *, num_classes: int, width_mult: float = 1.0, depth: int = 4, in_channels: int = 3):
        super().__init__()
        widths = [scaled(32 * 2**i, width_mult) for i in range(depth + 1)]
        self.inc = DoubleConv(in_channels, widths[0])
        self.down = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(Up(widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.classifier = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = [self.inc(x)]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2, ceil_mode=True)))
        x = skips.pop()  # the bottleneck, stride 2**depth
        for up in self.up:
            x = up(x, skips.pop())
        return self.classifier(x)
