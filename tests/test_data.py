"""CamVid on the real files, synthetic scenes, paired augmentations, label I/O."""

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from seg.data import CamVid, SyntheticScenes, build_dataset, camvid
from seg.data.io import read_image, read_labels, write_labels
from seg.data.transforms import (
    Compose,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    ToTensors,
    eval_transform,
    train_transform,
)
from seg.labels import IGNORE_INDEX


def test_camvid_real_files(camvid_dir):
    train, val = CamVid(camvid_dir, "train"), CamVid(camvid_dir, "val")
    assert (len(train), len(val)) == (367, 101)
    image, mask = val[0]
    assert image.shape == (360, 480, 3) and image.dtype == np.uint8
    assert mask.shape == (360, 480) and mask.dtype == np.uint8
    raw = np.array(Image.open(val.labels[0]))
    assert (raw == camvid.VOID_LABEL).any(), "pick a file with void pixels"
    np.testing.assert_array_equal(mask == IGNORE_INDEX, raw == camvid.VOID_LABEL)
    for i in range(0, len(val), 10):
        assert set(np.unique(val[i][1])) <= set(range(11)) | {IGNORE_INDEX}


def test_camvid_classes_match_the_dataset_description(camvid_dir):
    described = json.loads((camvid_dir / "classes.json").read_text())
    assert list(camvid.CLASSES) == described["names"]
    assert [list(c) for c in camvid.PALETTE] == described["palette"]
    assert camvid.VOID_LABEL == described["void_label"]


def test_camvid_transform_and_limit(camvid_dir):
    val = CamVid(camvid_dir, "val", transform=eval_transform(resize=(180, 240)), limit=3)
    image, mask = val[2]
    assert len(val) == 3
    assert image.shape == (3, 180, 240) and image.dtype == torch.float32
    assert mask.shape == (360, 480) and mask.dtype == torch.int64  # scored at full resolution


def test_the_library_never_reads_the_camvid_variable(camvid_dir, monkeypatch):
    """Only the command lines and the app read SEG_CAMVID_DIR, as a default they pass down."""
    monkeypatch.setenv(camvid.ENV_VAR, str(camvid_dir))
    with pytest.raises(FileNotFoundError, match="pass --data-dir"):
        CamVid(None, "val", limit=2)


def test_camvid_errors_say_how_to_get_the_data(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="SEG_CAMVID_DIR"):
        CamVid(None, "train")
    with pytest.raises(FileNotFoundError, match="seg.cli.download"):
        CamVid(tmp_path, "train")
    with pytest.raises(ValueError, match="choose one of train, val, test"):
        CamVid(tmp_path, "training")
    (tmp_path / "train").mkdir()
    (tmp_path / "trainannot").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "train" / "a.png")
    with pytest.raises(FileNotFoundError, match="have no label"):
        CamVid(tmp_path, "train")


def test_synthetic_scenes_are_deterministic_and_split_apart():
    a, b = SyntheticScenes(3, seed=5), SyntheticScenes(3, seed=5)
    for i in range(3):
        np.testing.assert_array_equal(a[i][0], b[i][0])
        np.testing.assert_array_equal(a[i][1], b[i][1])
    train, val = build_dataset("synthetic", "train"), build_dataset("synthetic", "val")
    assert (len(train), len(val)) == (256, 64)
    assert not np.array_equal(train[0][0], val[0][0])


def test_synthetic_object_size_controls_the_foreground_share():
    def share(object_size):
        return np.mean([(m > 0).mean() for m in SyntheticScenes(100, object_size=object_size).masks()])

    small, large = share(0.05), share(0.2)
    assert small < 0.03 < 0.15 < large
    image, mask = SyntheticScenes(1, size=(40, 56))[0]
    assert image.shape == (40, 56, 3) and mask.shape == (40, 56)
    assert set(np.unique(mask)) <= {0, 1, 2, 3}


def test_unknown_dataset_or_bad_synthetic_arguments():
    with pytest.raises(ValueError, match="choose one of camvid, synthetic"):
        build_dataset("cityscapes", "train")
    with pytest.raises(ValueError):
        SyntheticScenes(0)


def blocks(h=48, w=64, block=8):
    """A mask of 8x8 blocks of classes 0..3 and an image whose red channel encodes the class."""
    rng = np.random.default_rng(0)
    mask = np.kron(rng.integers(0, 4, (h // block, w // block)), np.ones((block, block), dtype=np.int64))
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[..., 0] = mask * 80
    return image, mask.astype(np.uint8)


def test_geometric_augmentations_keep_image_and_mask_aligned():
    image, mask = blocks()
    transform = Compose([ToTensors(), RandomScale(0.6, 1.7), RandomCrop((40, 40)), RandomHorizontalFlip()])
    for seed in range(20):
        random.seed(seed)
        img, m = transform(image, mask)
        assert img.shape == (3, 40, 40) and m.shape == (40, 40)
        assert set(m.unique().tolist()) <= {0, 1, 2, 3, IGNORE_INDEX}  # nearest: no blended class ids
        # away from block edges (where bilinear blends), the image's colour names the mask's class
        labels = m.float()[None, None]
        interior = (F.max_pool2d(labels, 5, 1, 2) == -F.max_pool2d(-labels, 5, 1, 2))[0, 0] & (m != IGNORE_INDEX)
        # the crop cut off the neighbours of its outer frame: those pixels cannot be judged
        interior[:2], interior[-2:], interior[:, :2], interior[:, -2:] = False, False, False, False
        decoded = (img[0] * 255 / 80).round().long()
        assert interior.sum() > 100
        assert torch.equal(decoded[interior], m[interior])


def test_crop_pads_the_mask_with_the_ignore_label():
    image, mask = blocks(16, 16)
    img, m = Compose([ToTensors(), RandomCrop((24, 24))])(image, mask)
    assert img.shape == (3, 24, 24)
    assert (m == IGNORE_INDEX).sum() == 24 * 24 - 16 * 16
    assert img[:, m == IGNORE_INDEX].abs().sum() == 0


def test_class_uniform_crops_put_a_rare_class_in_view():
    """A 3x3 'pole' in a 200x200 field of road: a 40x40 window falling anywhere holds it 1 time in 27;
    with focus every focus window holds it, and with two focus classes present each is drawn about half
    the time, however few pixels one has. The image is cut where the mask is."""
    mask = np.full((200, 200), 3, np.uint8)
    mask[150:153, 20:23] = 2
    image = np.zeros((200, 200, 3), np.uint8)
    image[..., 0] = mask * 80

    def share_with_pole(crop: RandomCrop, draws: int = 400) -> float:
        random.seed(0)
        seen = 0
        for _ in range(draws):
            img, m = Compose([ToTensors(), crop])(image, mask)
            assert torch.equal((img[0] * 255 / 80).round().long(), m)
            seen += bool((m == 2).any())
        return seen / draws

    anywhere = share_with_pole(RandomCrop((40, 40)))
    assert anywhere < 0.15
    assert share_with_pole(RandomCrop((40, 40), focus=(2,), focus_share=1.0)) == 1.0
    assert 0.4 < share_with_pole(RandomCrop((40, 40), focus=(2,), focus_share=0.5)) < 0.65
    assert 0.4 < share_with_pole(RandomCrop((40, 40), focus=(2, 3), focus_share=1.0)) < 0.65  # drawn by class
    assert share_with_pole(RandomCrop((40, 40), focus=(7,), focus_share=1.0)) < 0.15  # absent: anywhere
    with pytest.raises(ValueError, match="0 to 1"):
        RandomCrop((40, 40), focus=(2,), focus_share=1.5)


def test_train_transform_outputs_normalised_tensors():
    image, mask = blocks()
    img, m = train_transform(crop_size=(32, 32))(image, mask)
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32 and m.dtype == torch.int64
    assert img.min() < 0  # normalised, not in [0, 1]
    with pytest.raises(ValueError, match="same size"):
        train_transform(crop_size=(8, 8))(image, mask[:10])


def test_label_and_image_io(tmp_path):
    labels = np.array([[0, 1], [255, 10]], dtype=np.uint8)
    write_labels(tmp_path / "l.png", labels)
    np.testing.assert_array_equal(read_labels(tmp_path / "l.png"), labels)
    Image.new("RGBA", (5, 3), (10, 20, 30, 40)).save(tmp_path / "rgba.png")
    assert read_image(tmp_path / "rgba.png").shape == (3, 5, 3)
    Image.new("RGB", (5, 3)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="single-channel"):
        read_labels(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        write_labels(tmp_path / "x.png", np.array([[300]]))


def test_exif_rotated_photo_is_read_upright(tmp_path):
    image = Image.new("RGB", (6, 4), (200, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").shape == (6, 4, 3)


def test_camvid_by_video_sequence(camvid_dir):
    """Frames are kept or dropped by sequence, the honest validation for CamVid (issue 13)."""
    from seg.data.camvid import sequence_of

    train = CamVid(camvid_dir, "train")
    held = CamVid(camvid_dir, "train", sequences=("0006R0",))
    rest = CamVid(camvid_dir, "train", exclude=("0006R0",))
    assert len(held) + len(rest) == len(train) and len(held) > 0
    assert {sequence_of(p.name) for p in held.images} == {"0006R0"}
    assert "0006R0" not in {sequence_of(p.name) for p in rest.images}
    assert {sequence_of(p.name) for p in CamVid(camvid_dir, "val").images} == {"0016E5"}  # why val flatters
    with pytest.raises(ValueError, match="no train frames of sequence.*Seq05VD: train holds 0001TP, 0006R0, 0016E5"):
        CamVid(camvid_dir, "train", sequences=("Seq05VD",))
