"""Pictures of errors: the display palette, error and boundary maps, the charts and their colours."""

import itertools

import numpy as np
import pytest

from seg.charts import MODEL_COLOURS, confusion_chart, per_class_chart, series_colours
from seg.data.camvid import CLASSES, CLASSES_WITH_OTHER, DISPLAY_PALETTE, PALETTE_WITH_OTHER
from seg.metrics import BoundaryFScore, boundary_errors
from seg.visualize import BOUNDARY_COLORS, IGNORED_COLOR, boundary_map, draw_contours, enlarge, error_map


def _lab(rgb) -> np.ndarray:
    """sRGB triples -> CIE L*a*b* (D65), written from the CIE formulas."""
    c = np.asarray(rgb, dtype=np.float64) / 255
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz /= np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=-1)


def _deuteranope(rgb) -> np.ndarray:
    """What a deuteranope sees (Machado, Oliveira and Fernandes 2009, severity 1), as sRGB."""
    c = np.asarray(rgb, dtype=np.float64) / 255
    linear = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    m = np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]])
    seen = np.clip(linear @ m.T, 0, 1)
    return 255 * np.where(seen > 0.0031308, 1.055 * seen ** (1 / 2.4) - 0.055, 12.92 * seen)


def _closest_pair(palette) -> float:
    lab = _lab(palette)
    return min(np.linalg.norm(lab[i] - lab[j]) for i, j in itertools.combinations(range(len(lab)), 2))


def test_display_colours_can_be_told_apart_and_camvids_cannot():
    assert len(DISPLAY_PALETTE) == len(CLASSES_WITH_OTHER) == len(PALETTE_WITH_OTHER)
    assert _closest_pair(DISPLAY_PALETTE) >= 40
    assert _closest_pair(_deuteranope(DISPLAY_PALETTE)) >= 20
    # why the app does not draw with CamVid's own palette: Road and Fence, Building and Pedestrian
    assert _closest_pair(PALETTE_WITH_OTHER) < 25 and _closest_pair(_deuteranope(PALETTE_WITH_OTHER)) < 10


def test_error_map_paints_wrong_pixels_in_the_predicted_class():
    image = np.full((8, 8, 3), 100, np.uint8)
    truth = np.zeros((8, 8), np.uint8)
    truth[:, 4:] = 3
    truth[0] = 255  # void
    pred = truth.copy()
    pred[0] = 8  # wrong, but void: not scored
    pred[5:, 4:] = 8  # 3 rows x 4 columns of Road called Car
    picture, shares = error_map(image, pred, truth, DISPLAY_PALETTE)
    assert (picture[5:, 4:] == DISPLAY_PALETTE[8]).all()
    assert (picture[1:5] == 150 + round(0.4 * 100)).all() and (picture[5:, :4] == 190).all()  # pale grey
    assert {tuple(c) for c in picture[0]} == {IGNORED_COLOR, (190, 190, 190)}  # striped
    assert shares == pytest.approx({"correct": 44 / 64, "wrong": 12 / 64, "ignored": 8 / 64})
    with pytest.raises(ValueError, match="same size"):
        error_map(image, pred[:4], truth, DISPLAY_PALETTE)


def test_boundary_errors_split_the_boundary_f_counts():
    truth = np.zeros((20, 20), np.int64)
    truth[:, 10:] = 1
    shifted = np.zeros_like(truth)
    shifted[:, 13:] = 1  # 3 px off: beyond a 2 px tolerance
    edges = boundary_errors(pred=shifted, target=truth, num_classes=2, tolerance=2)
    assert not edges["matched"].any()
    assert set(np.nonzero(edges["extra"])[1]) == {12, 13} and set(np.nonzero(edges["missed"])[1]) == {9, 10}
    assert boundary_errors(pred=shifted, target=truth, num_classes=2, tolerance=3)["matched"].sum() == 80
    # on random maps, the pixels add up to what BoundaryFScore counts
    rng = np.random.default_rng(0)
    for _ in range(5):
        target = rng.integers(0, 4, (24, 32)).repeat(2, 0).repeat(2, 1)
        target[rng.random(target.shape) < 0.05] = 255
        pred = rng.integers(0, 4, (24, 32)).repeat(2, 0).repeat(2, 1)
        scorer = BoundaryFScore(4, tolerance=1)
        scorer.update(pred=pred, target=target)
        pred_total, pred_hit, true_total, true_hit = scorer.counts.sum(dim=1).tolist()
        edges = boundary_errors(pred=pred, target=target, num_classes=4, tolerance=1)
        assert edges["extra"].sum() == pred_total - pred_hit and edges["missed"].sum() == true_total - true_hit


def test_boundary_map_draws_each_kind_in_its_colour():
    image = np.zeros((10, 10, 3), np.uint8)
    edges = {name: np.zeros((10, 10), bool) for name in BOUNDARY_COLORS}
    edges["matched"][1, 1], edges["extra"][5, 5], edges["missed"][8, 8] = True, True, True
    picture = boundary_map(image, edges, width=0)
    for name, (y, x) in (("matched", (1, 1)), ("extra", (5, 5)), ("missed", (8, 8))):
        assert tuple(picture[y, x]) == BOUNDARY_COLORS[name]
    assert (boundary_map(image, edges, width=1)[4:7, 4:7] == BOUNDARY_COLORS["extra"]).all()


def test_confusion_chart_checks_its_names():
    counts = np.eye(len(CLASSES), len(CLASSES_WITH_OTHER), dtype=np.int64) * 50
    picture = confusion_chart(counts, CLASSES, CLASSES_WITH_OTHER)
    assert picture.ndim == 3 and picture.shape[2] == 3
    with pytest.raises(ValueError, match="names give"):
        confusion_chart(counts, CLASSES, CLASSES)


def test_enlarge_repeats_pixels_by_a_whole_factor():
    picture = np.arange(12, dtype=np.uint8).reshape(3, 4)
    big = enlarge(picture, 10)  # 4 -> 12: factor 3, the smallest that reaches 10
    assert big.shape == (9, 12) and (big[:3, :3] == 0).all() and (big[6:, 9:] == 11).all()
    assert enlarge(picture, 4) is picture


def test_contours_mark_the_pixel_before_each_change_of_class():
    labels = np.zeros((4, 5), np.uint8)
    labels[:, 3:] = 1
    drawn = draw_contours(np.full((4, 5, 3), 200, np.uint8), labels, color=(0, 0, 0))
    assert np.array_equal((drawn[..., 0] == 0).nonzero()[1], [2, 2, 2, 2])


def test_a_model_keeps_its_colour_in_every_chart():
    """FCN-8s was orange in one chart and pink in another: colours went by position in the chart."""
    colours = series_colours(["U-Net (from scratch)", "FCN-8s", "U-Net (plain)", "U-Net + TTA + SAM", "my model"])
    assert colours[0] == MODEL_COLOURS["U-Net"] and colours[1] == MODEL_COLOURS["FCN-8s"]
    assert len(set(colours)) == 5  # the same model's other series: lighter, then darker; others: a free colour
    assert colours[4] not in colours[:4]
    assert series_colours(["SegFormer-B0 (from scratch)", "SegFormer pretrained (b0-ade)"]) == [
        MODEL_COLOURS["SegFormer-B0"], MODEL_COLOURS["SegFormer"]]

    def first_bar(values: dict, series: int) -> tuple:
        chart = per_class_chart(values, ["Sky"], width=300)
        return tuple(chart[34 + 9 * series + 4, 112])  # the Sky group's bar of that series, near its start

    both = {"FCN-32s": {"Sky": 1.0}, "U-Net": {"Sky": 1.0}}
    assert first_bar(both, 1) == first_bar({"U-Net": {"Sky": 1.0}}, 0) == MODEL_COLOURS["U-Net"]
