"""The residual backbone shared by FCN and DeepLabv3: image -> dict of named stage features."""

from torch import Tensor, nn

from .layers import BasicBlock, ConvBNReLU, scaled

# Nominal widths of the four stages at width_mult=1: a ResNet-18 at half width, small enough to
# train from scratch on CamVid's 367 images and to run on a laptop CPU.
STAGE_WIDTHS = (32, 64, 128, 256)


class ResNet(nn.Module):
    """A ResNet-18-style backbone written for segmentation.

    The stem halves the resolution, then each of `layer1`..`layer4` halves it again, so the stages
    sit at strides 4, 8, 16 and 32. With `output_stride` 16 or 8 the last one or two stages keep
    their resolution and dilate their convolutions instead (DeepLab's "atrous" backbone), which
    keeps the receptive field growing without losing detail.

    Args:
        width_mult: scales every stage's channel count (see `STAGE_WIDTHS`).
        depths: residual blocks per stage.
        output_stride: 32 (plain), 16 or 8 (dilated).

    Attributes:
        out_channels: channels of each named feature, for heads to size themselves from.
        strides: stride of each named feature relative to the input.

    forward: `x (B, 3, H, W) float` -> `{"layer1": (B, C1, H/4, W/4), ..., "layer4": (B, C4, H/os, W/os)}`
    (sizes rounded up for odd inputs).
    """

    def __init__(self, *, in_channels: int = 3, width_mult: float = 1.0,
                 depths: tuple[int, ...] = (2, 2, 2, 2), output_stride: int = 32):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        widths = [scaled(w, width_mult) for w in STAGE_WIDTHS]
        self.stem = nn.Sequential(
            ConvBNReLU(in_channels, widths[0] // 2, stride=2),
            ConvBNReLU(widths[0] // 2, widths[0]),
        )
        self.out_channels: dict[str, int] = {}
        self.strides: dict[str, int] = {}
        stride, dilation, channels = 2, 1, widths[0]
        stages = []
        for i, (width, depth) in enumerate(zip(widths, depths)):
            name = f"layer{i + 1}"
            if stride < output_stride:
                stride, block_stride = stride * 2, 2
            else:  # trade this stage's stride for dilation: same receptive-field growth, no downsampling
                dilation, block_stride = dilation * 2, 1
            blocks = [BasicBlock(channels, width, stride=block_stride, dilation=dilation)]
            blocks += [BasicBlock(width, width, dilation=dilation) for _ in range(depth - 1)]
            stages.append((name, nn.Sequential(*blocks)))
            self.out_channels[name], self.strides[name], channels = width, stride, width
        self.stages = nn.ModuleDict(stages)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        features = {}
        x = self.stem(x)
        for name, stage in self.stages.items():
            x = stage(x)
            features[name] = x
        return features
