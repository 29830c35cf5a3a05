"""The click simulation, proven on stand-in decoders whose answers are worked out by hand, then the
command line on CamVid with a random-weight SAM."""

import json

import numpy as np
import pytest

from conftest import run_module
from seg.sam.clicks import (
    ClickCurve,
    click_curve,
    interior_point,
    mask_iou,
    next_click,
    objects_in,
    semantic_iou,
    summarise,
    summary_line,
)

H, W = 40, 64


def square_decoder(half: int = 5):
    """A stand-in for SAM: the union of (2 half + 1)-pixel squares around the positive clicks, minus
    the squares around the negative ones (applied in click order)."""
    def decode(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
        mask = np.zeros((H, W), bool)
        for (x, y), label in zip(points.astype(int), labels):
            mask[max(0, y - half):y + half + 1, max(0, x - half):x + half + 1] = bool(label)
        return mask
    return decode


def bar() -> np.ndarray:
    target = np.zeros((H, W), bool)
    target[10:21, 10:53] = True  # 11 rows x 43 columns = 473 pixels
    return target


def test_interior_point_is_farthest_from_the_border_and_the_image_edge_is_a_border():
    square = np.zeros((H, W), bool)
    square[5:16, 20:31] = True
    assert interior_point(square) == (25, 10)
    # on the bar every point of the middle row from x=15 to 47 is 6 from the border: the first wins
    assert interior_point(bar()) == (15, 15)
    corner = np.zeros((H, W), bool)
    corner[:9, :9] = True  # touches the image's edge, which counts as border: the middle, not the corner
    assert interior_point(corner) == (4, 4)
    with pytest.raises(ValueError, match="empty"):
        interior_point(np.zeros((H, W), bool))


def test_the_simulation_clicks_where_a_person_would():
    """Worked out by hand on an 11x43 bar with 11x11 squares as masks."""
    curve = click_curve(square_decoder(), bar(), max_clicks=5)
    assert curve.clicks[:4] == ((15, 15, True),  # the bar's first medial point
                                (26, 15, True),  # the missed part, x 21..52: its first medial point
                                (37, 15, True),  # x 32..52
                                (47, 14, True))  # x 43..52 is 10 wide: 5 from the border, rows 14-16 tie
    # the fourth square (rows 9..19, x 42..52) spills over row 9 (11 pixels) and misses row 20 at
    # x 43..52 (10 pixels): the larger error is the spill, so the fifth click is negative, on it
    assert curve.clicks[4] == (42, 9, False)
    assert curve.ious[:4] == pytest.approx((121 / 473, 242 / 473, 363 / 473, 463 / 484))
    assert len(curve.ious) == 5
    last = square_decoder()(np.array([c[:2] for c in curve.clicks], np.float32), np.array([c[2] for c in curve.clicks]))
    assert np.array_equal(curve.mask, last)  # the mask after the fifth click, kept: nobody decodes it again


def test_a_perfect_mask_stops_the_clicks_and_the_curve_stays_at_one():
    target = bar()
    curve = click_curve(lambda points, labels: target, target, max_clicks=10)
    assert curve.clicks == ((15, 15, True),) and curve.ious == (1.0,) * 10 and np.array_equal(curve.mask, target)
    assert curve.noc(0.85) == 1 and curve.noc(0.9) == 1


def test_void_pixels_are_neither_object_nor_error():
    target, valid = bar(), np.ones((H, W), bool)
    valid[:, 21:] = False  # only x 10..20 of the bar is annotated
    def spill(points, labels):  # everything: wrong only where annotated
        return np.ones((H, W), bool)

    curve = click_curve(spill, target, max_clicks=2, valid=valid)
    assert curve.clicks[0] == (15, 15, True)
    assert curve.ious[0] == pytest.approx(121 / (21 * H))  # the annotated columns 0..20 are the union
    x, y, positive = curve.clicks[1]
    assert valid[y, x] and not target[y, x] and not positive
    assert next_click(target, target, valid) is None


def test_next_click_prefers_the_larger_error_and_a_missed_region_on_a_tie():
    target, mask = np.zeros((H, W), bool), np.zeros((H, W), bool)
    target[0:5, 0:5] = True  # 25 missed
    mask[20:25, 20:25] = True  # 25 spilled: a tie, the missed region wins
    assert next_click(mask, target) == (2, 2, True)
    mask[20:26, 20:26] = True  # 36 spilled: now the spill is larger
    assert next_click(mask, target) == (22, 22, False)


def test_noc_and_the_summary_count_the_maximum_for_a_curve_that_never_gets_there():
    fast = ClickCurve(clicks=(), ious=(0.5, 0.86, 0.95))
    slow = ClickCurve(clicks=(), ious=(0.2, 0.3, 0.4))
    assert (fast.noc(0.85), fast.noc(0.9), slow.noc(0.85)) == (2, 3, None)
    summary = summarise([fast, slow], max_clicks=3)
    assert summary["mean_iou"] == pytest.approx([0.35, 0.58, 0.675])
    assert summary["noc@85"] == 2.5 and summary["noc@90"] == 3.0 and summary["not_reached@85"] == 1
    with pytest.raises(ValueError, match="no objects"):
        summarise([], max_clicks=3)


def test_the_printed_summary_says_what_the_figures_are():
    """With three clicks it printed "after 1 / 5 / 3 clicks" (the third click's IoU under "5"), and a
    NoC@85 of 3.0 when no object reached 85%."""
    fast = ClickCurve(clicks=(), ious=(0.5, 0.86, 0.95))
    slow = ClickCurve(clicks=(), ious=(0.2, 0.3, 0.4))
    line = summary_line(summarise([fast, slow], max_clicks=3), max_clicks=3)
    assert "after 1 / 3 clicks 0.350 / 0.675" in line
    assert "NoC@85 2.5 (1 never reached 85%, counted as 3)" in line
    assert "NoC@90 3.0 (1 never reached 90%, counted as 3)" in line
    line = summary_line(summarise([slow, slow], max_clicks=3), max_clicks=3)
    assert "NoC@85: none reached 85% within 3 clicks" in line and "3.0" not in line
    ten = ClickCurve(clicks=(), ious=(0.5, 0.6, 0.65, 0.7, 0.72, 0.8, 0.84, 0.86, 0.91, 0.95))
    assert "after 1 / 5 / 10 clicks 0.500 / 0.720 / 0.950; NoC@85 8.0; NoC@90 9.0" in summary_line(
        summarise([ten], max_clicks=10), max_clicks=10)
    assert "after 1 click 0.500" in summary_line(summarise([ten], max_clicks=1), max_clicks=1)


def test_objects_are_connected_regions_of_one_class_largest_first():
    labels = np.zeros((H, W), np.uint8)
    labels[0:10, 0:10] = 3  # 100 pixels
    labels[20:35, 20:35] = 3  # 225 pixels, the same class but apart: another object
    labels[30:32, 50:52] = 8  # a 4-pixel speck
    labels[38:, :] = 255  # void: never an object
    found = objects_in(labels, min_pixels=50, classes={3, 8})
    assert [(o["class"], o["pixels"]) for o in found] == [(3, 225), (3, 100)]
    assert found[0]["point"] == (27, 27) and found[0]["mask"].sum() == 225
    assert all(o["class"] != 255 for o in objects_in(labels))


def test_a_semantic_model_is_scored_by_its_regions_that_touch_the_object():
    target = np.zeros((H, W), bool)
    target[10:20, 10:20] = True
    prediction = np.zeros((H, W), np.uint8)
    prediction[10:20, 12:22] = 8  # overlaps the object: 80 of 100, 20 outside
    prediction[30:35, 40:50] = 8  # the same class elsewhere: not this object
    assert semantic_iou(prediction, target, 8) == pytest.approx(80 / 120)
    assert semantic_iou(prediction, target, 5) == 0.0
    assert mask_iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0


@pytest.mark.slow
def test_the_command_line_writes_its_json_and_chart(camvid_dir, vit_t_checkpoint, tmp_path):
    out = tmp_path / "clicks"
    done = run_module("seg.cli.clicks", "--data-dir", str(camvid_dir), "--split", "val", "--limit", "1",
                      "--checkpoint", str(vit_t_checkpoint), "--variant", "vit_t", "--no-download",
                      "--max-clicks", "3", "--min-pixels", "2000", "--out", str(out))
    report = json.loads((out / "clicks.json").read_text())
    assert report["images"] == 1 and report["summary"]["objects"] == len(report["objects"]) > 0
    assert len(report["summary"]["mean_iou"]) == 3 and all(len(o["ious"]) == 3 for o in report["objects"])
    assert all(o["pixels"] >= 2000 for o in report["objects"])
    assert (out / "clicks.png").stat().st_size > 0 and "NoC@85" in done.stdout
    bad = run_module("seg.cli.clicks", "--data-dir", str(tmp_path), "--no-download", "--out", str(out), check=False)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
