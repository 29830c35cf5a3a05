"""seg: a small PyTorch library for semantic segmentation, written to be read.

The layout is the architecture:

- `seg.models`: FCN-32s, FCN-8s, U-Net and DeepLabv3, built by name (`build_model`).
- `seg.losses`: cross-entropy, class-weighted cross-entropy, soft Dice, CE+Dice; class weights.
- `seg.metrics`: a confusion matrix that accumulates, then computes IoU, Dice, accuracies, and
  the boundary F-score.
- `seg.data`: CamVid, synthetic scenes, paired augmentations.
- `seg.engine`: one training epoch and one evaluation pass.
- `seg.inference`: image in, label map out; `seg.visualize`: label map to colours.
- `seg.checkpoint`: safetensors weights with a JSON card beside them.
- Command lines: `python -m seg.cli.train`, `seg.cli.evaluate`, `seg.cli.predict`, `seg.cli.download`.
"""

from .labels import IGNORE_INDEX

__version__ = "0.1.0"
__all__ = ["IGNORE_INDEX", "__version__"]
