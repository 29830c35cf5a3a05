"""DeepLabv3 (Chen et al., 2017): a dilated backbone and Atrous Spatial Pyramid Pooling."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ConvBNReLU, scaled
from .resnet import ResNet


class ASPPPooling(nn.Sequential):
    """Image-level features: global average, 1x1 conv, broadcast back to the feature map's size.

    No BatchNorm here, unlike the paper: on a 1x1 map a batch of one has a single value per
    channel and BatchNorm cannot normalise it, which would forbid batch size 1 in training.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(super().forward(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Parallel branches that see the same features at several receptive fields, then a 1x1 projection.

    Branches: one 1x1 conv, one 3x3 conv per dilation rate in `rates`, and image pooling.
    """

    def __init__(self, in_channels: int, out_channels: int, *, rates: tuple[int, ...] = (6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList(
            [ConvBNReLU(in_channels, out_channels, 1)]
            + [ConvBNReLU(in_channels, out_channels, dilation=rate) for rate in rates]
            + [ASPPPooling(in_channels, out_channels)]
        )
        self.project = nn.Sequential(
            ConvBNReLU(len(self.branches) * out_channels, out_channels, 1),
            nn.Dropout(0.5),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3(nn.Module):
    """DeepLabv3 on our ResNet backbone with dilation in place of the last strides.

    Args:
        num_classes: output channels.
        width_mult: scales the backbone and the ASPP (128 channels at 1.0).
        output_stride: 16 (layer4 dilated) or 8 (layer3 and layer4 dilated): finer maps, more compute.
        rates: ASPP dilation rates. The paper's (6, 12, 18) is for output stride 16; double them at 8
            to keep the same receptive fields in pixels.

    forward: `x (B, 3, H, W) float` -> logits `(B, num_classes, H, W)`.
    """

    def __init__(self, *, num_classes: int, width_mult: float = 1.0, output_stride: int = 16,
                 rates: tuple[int, ...] = (6, 12, 18), in_channels: int = 3):
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"DeepLabv3 output_stride must be 8 or 16, got {output_stride}")
        self.backbone = ResNet(in_channels=in_channels, width_mult=width_mult, output_stride=output_stride)
        aspp_channels = scaled(128, width_mult)
        self.head = nn.Sequential(
            ASPP(self.backbone.out_channels["layer4"], aspp_channels, rates=tuple(rates)),
            ConvBNReLU(aspp_channels, aspp_channels),
            nn.Conv2d(aspp_channels, num_classes, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        scores = self.head(self.backbone(x)["layer4"])  # (B, K, H/os, W/os)
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
