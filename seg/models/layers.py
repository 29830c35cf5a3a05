"""Small building blocks shared by the models: conv-BN-ReLU and the residual block."""

from torch import Tensor, nn


def scaled(channels: int, width_mult: float) -> int:
    """A nominal channel count scaled by the width multiplier (at least 4, so no layer vanishes)."""
    return max(4, int(round(channels * width_mult)))


class ConvBNReLU(nn.Sequential):
    """`kernel_size` conv (no bias: BN supplies it) -> BatchNorm -> ReLU; "same" padding for any dilation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *,
                 stride: int = 1, dilation: int = 1):
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                      dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class BasicBlock(nn.Module):
    """The ResNet basic block: two 3x3 convs plus an identity (or 1x1 projection) shortcut.

    `dilation` > 1 enlarges the receptive field without striding; DeepLab's backbone uses it in
    place of the stride of its last stages.
    """

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels, out_channels, stride=stride, dilation=dilation)
        self.conv2 = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))
