"""FCN-32s and FCN-8s (Long et al., 2015): class scores from the deepest features, fused with skips."""

import torch.nn.functional as F
from torch import Tensor, nn

from .layers import ConvBNReLU
from .resnet import ResNet


class FCN(nn.Module):
    """Fully convolutional network on our ResNet backbone.

    The head scores every position of the stride-32 features. FCN-32s upsamples those scores
    straight to the input size, so no detail finer than a 32-pixel cell can survive. FCN-8s
    first adds scores read from the stride-16 and stride-8 features (`skips`), one stage at a
    time, and upsamples from stride 8.

    Args:
        num_classes: output channels.
        width_mult: backbone width multiplier.
        skips: backbone stages to fuse, coarse to fine: `()` for FCN-32s,
            `("layer3", "layer2")` (strides 16 and 8) for FCN-8s.

    forward: `x (B, 3, H, W) float` -> logits `(B, num_classes, H, W)`.
    """

    def __init__(self, *, num_classes: int, width_mult: float = 1.0, skips: tuple[str, ...] = (),
                 in_channels: int = 3):
        super().__init__()
        self.backbone = ResNet(in_channels=in_channels, width_mult=width_mult)
        channels = self.backbone.out_channels
        self.head = nn.Sequential(
            ConvBNReLU(channels["layer4"], channels["layer4"]),
            nn.Dropout2d(0.1),
            nn.Conv2d(channels["layer4"], num_classes, 1),
        )
        self.skip_scores = nn.ModuleDict({name: nn.Conv2d(channels[name], num_classes, 1) for name in skips})
        for score in self.skip_scores.values():
            # Zero-initialised as in the paper: training starts from FCN-32s and the skips
            # learn only the correction they can add.
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)

    def forward(self, x: Tensor) -> Tensor:
        features = self.backbone(x)
        scores = self.head(features["layer4"])  # (B, K, H/32, W/32)
        for name, score_layer in self.skip_scores.items():
            skip = score_layer(features[name])  # (B, K, H/s, W/s), s = 16 then 8
            scores = F.interpolate(scores, size=skip.shape[-2:], mode="bilinear", align_corners=False) + skip
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)
