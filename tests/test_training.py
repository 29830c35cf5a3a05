"""The training loop learns: a short run on synthetic scenes must reach a stated mIoU."""

import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seg.data import build_dataset
from seg.data.transforms import eval_transform, train_transform
from seg.engine import evaluate, train_one_epoch
from seg.inference import segment, upsample_logits
from seg.losses import build_loss
from seg.models import build_model

pytestmark = pytest.mark.slow  # the module's tests take seconds each on 2 cores (docs/testing.md)

# U-Net, width 0.25, 192 scenes of 64x64, 6 epochs (72 steps): about 15 s on 2 CPU cores. It
# reached 0.72 val mIoU when this test was written; an untrained model scores about 0.2 (all
# background). 0.6 leaves margin for platform noise while still proving that the loop learns.
MIN_MIOU = 0.6


def test_short_training_run_learns_synthetic_scenes():
    random.seed(0)
    torch.manual_seed(0)
    options = dict(synthetic_images=192, image_size=(64, 64))
    train_set = build_dataset("synthetic", "train", transform=train_transform(crop_size=(64, 64)), **options)
    val_set = build_dataset("synthetic", "val", transform=eval_transform(), **options)
    loader = DataLoader(train_set, batch_size=16, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    model = build_model("unet", num_classes=4, width_mult=0.25)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    epochs, step = 6, 0
    total = epochs * len(loader)
    losses = []
    for _ in range(epochs):
        loss, step = train_one_epoch(model, loader, loss_fn=build_loss("ce"), optimizer=optimizer, progress=False,
                                     lr_at=lambda s: 3e-3 * min(1.0, (s + 1) / 10) * (1 - s / total) ** 0.9, step=step)
        losses.append(loss)
    scores = evaluate(model, DataLoader(val_set, batch_size=16), num_classes=4, progress=False)
    assert losses[-1] < 0.6 * losses[0]
    assert scores.miou >= MIN_MIOU, f"val mIoU {scores.miou:.3f} after {step} steps"
    assert scores.mean_boundary_f > 0.5
    # the one-image inference path gives exactly the labels of the batched evaluation path
    image, _ = val_set.read(0)
    with torch.no_grad():
        batched = model(val_set[0][0][None]).argmax(1)[0].numpy()
    np.testing.assert_array_equal(segment(model, image), batched)
    # ...and at a reduced input size, the labels of evaluation's resize-then-upsample path
    small = eval_transform(resize=(40, 48))(image, np.zeros(image.shape[:2], np.uint8))[0]
    with torch.no_grad():
        reduced = upsample_logits(model(small[None]), image.shape[:2]).argmax(1)[0].numpy()
    np.testing.assert_array_equal(segment(model, image, input_size=(40, 48)), reduced)
