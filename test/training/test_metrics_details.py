"""Metrics in detail: the numbers each function must give on hand-made inputs whose answer is known
(boundary tolerance, track matching counts, bootstrap intervals, COCO mask AP and its resampling)."""
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from hyperseg_ros.training.metrics import (
    IoUAccumulator,
    MaskAP,
    _boundary,
    bootstrap_mean,
    bootstrap_ratio,
    boundary_f,
    encode_mask,
    identity_switches,
    track_matches,
)


def box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_accumulator_keeps_each_samples_intersection_and_union():
    acc = IoUAccumulator()
    acc.add(box(10, 10, 0, 10, 5, 10), box(10, 10, 0, 10, 0, 7))  # I = 20, U = 100
    acc.add(np.zeros((4, 4), bool), box(4, 4, 0, 2, 0, 2))  # I = 0, U = 4
    assert (acc.intersections, acc.unions) == ([20, 0], [100, 4])
    assert acc.ciou == pytest.approx(20 / 104) and acc.giou == pytest.approx(0.1)
    assert np.isnan(IoUAccumulator().ciou) and np.isnan(IoUAccumulator().giou)


def test_boundary_is_the_one_pixel_inner_ring_and_the_image_edge_counts():
    ring = _boundary(box(9, 9, 2, 7, 2, 7))
    expected = box(9, 9, 2, 7, 2, 7) & ~box(9, 9, 3, 6, 3, 6)
    assert ring.dtype == bool and np.array_equal(ring, expected)
    full = _boundary(np.ones((6, 8), bool))  # outside the image counts as background
    assert np.array_equal(full, ~box(6, 8, 1, 5, 1, 7))


@pytest.mark.parametrize("shift", [(0, 4), (4, 0), (0, -4), (-4, 0), (3, 3), (-3, 3)])
def test_boundary_f_tolerates_the_radius(shift):
    # 300x300: radius ceil(0.008 x 424.3) = 4 px, a disc (Euclidean): (3, 3) is inside it, (4, 4) is not
    gt = box(300, 300, 100, 200, 100, 200)
    dy, dx = shift
    assert boundary_f(box(300, 300, 100 + dy, 200 + dy, 100 + dx, 200 + dx), gt) == 1.0


def test_boundary_f_beyond_the_radius_is_symmetric():
    gt = box(300, 300, 100, 200, 100, 200)
    f = {s: boundary_f(box(300, 300, 100 + s[0], 200 + s[0], 100 + s[1], 200 + s[1]), gt)
         for s in ((0, 5), (0, -5), (5, 0), (-5, 0))}
    assert len(set(f.values())) == 1 and 0.4 < f[(0, 5)] < 0.6, f
    assert boundary_f(box(300, 300, 104, 204, 104, 204), gt) < 1.0  # diagonal (4, 4): outside the disc
    small = box(50, 50, 10, 30, 10, 30)  # 50x50: the radius is at least 1 px, not 2
    assert boundary_f(box(50, 50, 10, 30, 11, 31), small) == 1.0
    assert boundary_f(box(50, 50, 10, 30, 12, 32), small) < 1.0


def test_boundary_f_of_far_apart_masks_is_zero():
    assert boundary_f(box(60, 60, 0, 10, 0, 10), box(60, 60, 40, 50, 40, 50)) == 0.0


def test_track_matches_counts_matched_and_ground_truth_object_frames():
    a, b = box(20, 20, 0, 10, 0, 10), box(20, 20, 10, 20, 10, 20)
    half_a = box(20, 20, 0, 10, 0, 5)  # IoU 0.5 with a: at the default threshold
    gt = [{1: a, 2: b}, {1: a, 2: b}, {1: a}, {}]
    pred = [{7: a, 8: b}, {}, {7: half_a, 9: box(20, 20, 15, 20, 0, 5)}, {5: b}]  # frame 3: nothing to find
    assert track_matches(gt, pred) == (0, 3, 5)
    assert track_matches(gt, pred, iou_threshold=0.6) == (0, 2, 5)
    # a poor match first in assignment order does not end the frame's matching
    gt2 = [{1: a, 2: b}]
    assert track_matches(gt2, [{7: box(20, 20, 0, 10, 0, 2), 8: b}]) == (0, 1, 2)


def test_identity_switches_uses_its_threshold():
    a = box(20, 20, 0, 10, 0, 10)
    part = box(20, 20, 0, 10, 0, 3)  # IoU 0.3
    gt = [{1: a}] * 3
    pred = [{7: part}, {8: part}, {9: part}]
    assert identity_switches(gt, pred) == 0  # never matched at 0.5
    assert identity_switches(gt, pred, iou_threshold=0.2) == 2


def test_bootstrap_ratio_known_intervals():
    assert bootstrap_ratio([], []) == (pytest.approx(float("nan"), nan_ok=True),) * 2
    assert all(np.isnan(bootstrap_ratio([0, 0], [0, 0])))  # no resample has a denominator
    assert bootstrap_ratio([3, 6, 9], [1, 2, 3]) == (3.0, 3.0)  # every resample: ratio 3
    assert bootstrap_ratio([0, 1], [1, 1]) == (0.0, 1.0)
    assert bootstrap_ratio([0, 1], [0, 2]) == (0.5, 0.5)  # resamples without a denominator are dropped
    # the mean of 0..99 over 20000 resamples: normal with sd 28.87 / 10 -> 49.5 -/+ 1.96 x 2.887
    low, high = bootstrap_mean(np.arange(100.0), resamples=20000)
    assert low == pytest.approx(49.5 - 5.66, abs=0.3) and high == pytest.approx(49.5 + 5.66, abs=0.3)
    assert bootstrap_mean(np.arange(100.0), resamples=200, seed=1) != bootstrap_mean(np.arange(100.0), resamples=200)
    assert bootstrap_mean(np.arange(100.0), seed=3) == bootstrap_mean(np.arange(100.0), seed=3)
    # a ratio of sums, not a mean of ratios: (1 + 0) / (1 + 3) can appear, 0.5 cannot
    low, high = bootstrap_ratio([1, 0], [1, 3], resamples=4000)
    assert (low, high) == (0.0, 1.0)
    assert bootstrap_ratio([1, 0], [1, 3], resamples=1) in {(v, v) for v in (0.0, 0.25, 1.0)}


def test_encode_mask_is_json_ready_coco_rle():
    m = box(7, 9, 1, 4, 2, 8)
    rle = encode_mask(m)
    assert set(rle) == {"size", "counts"} and isinstance(rle["counts"], str)
    back = json.loads(json.dumps(rle))
    assert np.array_equal(mask_utils.decode({**back, "counts": back["counts"].encode()}).astype(bool), m)


def test_mask_ap_dataset_is_well_formed_coco():
    m1, m2 = box(40, 40, 0, 20, 0, 20), box(40, 40, 20, 40, 20, 40)
    ap = MaskAP()
    ap.add([("Red Circle", m1), ("star", m2)], [("red circle", 0.9, m1)], 40, 40)
    ap.add([("star", m1)], [("STAR", 0.4, m2)], 40, 40)
    assert ap.categories == {"red circle": 1, "star": 2}
    assert [i["id"] for i in ap.images] == [1, 2] and [a["id"] for a in ap.annotations] == [1, 2, 3]
    assert [a["image_id"] for a in ap.annotations] == [1, 1, 2] and [d["image_id"] for d in ap.detections] == [1, 2]
    assert [a["category_id"] for a in ap.annotations] == [1, 2, 2] and [d["category_id"] for d in ap.detections] == [1, 2]
    assert ap.annotations[0]["bbox"] == [0.0, 0.0, 20.0, 20.0] and ap.annotations[0]["area"] == 400.0


def test_mask_ap_labels_scores_and_empty_cases(capsys):
    m1 = box(40, 40, 0, 20, 0, 20)
    nan = MaskAP().evaluate()
    assert set(nan) == {"mAP", "AP50"} and np.isnan(nan["mAP"]) and np.isnan(nan["AP50"])
    ap = MaskAP()
    ap.add([("star", m1)], [("circle", 0.9, m1)], 40, 40)  # the right mask under a wrong label
    assert ap.evaluate() == {"mAP": 0.0, "AP50": 0.0}
    ap = MaskAP()
    ap.add([("star", m1)], [], 40, 40)
    assert ap.evaluate() == {"mAP": 0.0, "AP50": 0.0}
    ap = MaskAP()
    ap.add([("star", m1)], [("star", 0.9, box(40, 40, 0, 20, 0, 13))], 40, 40)  # IoU 0.65
    result = ap.evaluate()
    assert result["AP50"] == pytest.approx(1.0) and result["mAP"] == pytest.approx(0.4, abs=0.01)  # 0.5 .. 0.65: 4 of 10
    assert capsys.readouterr().out == ""  # COCOeval's tables are not printed


def test_mask_ap_resampling_and_bootstrap():
    m1, m2 = box(40, 40, 0, 20, 0, 20), box(40, 40, 20, 40, 20, 40)
    ap = MaskAP()
    ap.add([("star", m1)], [("star", 0.9, m1)], 40, 40)  # image 1: right
    ap.add([("star", m2)], [("star", 0.9, m1)], 40, 40)  # image 2: wrong
    assert ap.resampled([1, 1]).evaluate()["AP50"] == pytest.approx(1.0)
    assert ap.resampled([2, 2]).evaluate()["AP50"] == 0.0
    same = ap.resampled([1, 2])
    assert same.evaluate() == ap.evaluate() and same.categories == ap.categories
    twice = ap.resampled([2, 1, 2])
    assert [i["id"] for i in twice.images] == [1, 2, 3] and [a["id"] for a in twice.annotations] == [1, 2, 3]
    assert [a["segmentation"] for a in twice.annotations] == [encode_mask(m2), encode_mask(m1), encode_mask(m2)]
    assert [d["image_id"] for d in twice.detections] == [1, 2, 3]
    intervals = ap.bootstrap(resamples=30)
    assert set(intervals) == {"mAP", "AP50"}
    assert intervals["AP50"][0] == 0.0 and intervals["AP50"][1] == pytest.approx(1.0)
    perfect = MaskAP()
    perfect.add([("star", m1)], [("star", 0.9, m1)], 40, 40)
    assert perfect.bootstrap(resamples=5) == {"mAP": (pytest.approx(1.0), pytest.approx(1.0)),
                                              "AP50": (pytest.approx(1.0), pytest.approx(1.0))}
    assert all(np.isnan(v) for pair in MaskAP().bootstrap(resamples=5).values() for v in pair)


def test_bootstrap_of_one_item_and_of_fractional_denominators():
    assert bootstrap_mean([5.0]) == (5.0, 5.0)
    assert bootstrap_ratio([2.0], [4.0]) == (0.5, 0.5)
    assert bootstrap_ratio([1.0], [0.5]) == (2.0, 2.0)  # a denominator below 1 is still a denominator


def test_mask_ap_resampling_keeps_each_images_size_and_its_empty_lists():
    m = box(40, 40, 0, 20, 0, 20)
    ap = MaskAP()
    ap.add([("star", m)], [], 40, 40)  # no prediction
    ap.add([], [("star", 0.5, box(30, 50, 0, 10, 0, 10))], 30, 50)  # no ground truth, another size
    out = ap.resampled([2, 1, 2])
    assert [(i["id"], i["height"], i["width"]) for i in out.images] == [(1, 30, 50), (2, 40, 40), (3, 30, 50)]
    assert [a["image_id"] for a in out.annotations] == [2] and [d["image_id"] for d in out.detections] == [1, 3]


def test_mask_ap_bootstrap_is_reproducible_from_its_seed():
    ap = MaskAP()
    for k in range(6):  # images from right to wrong: the resamples' AP varies
        gt = box(40, 40, 0, 20, 0, 20)
        ap.add([("star", gt)], [("star", 0.9, box(40, 40, 0, 20, 0, 20 - 3 * k))], 40, 40)
    first, again, other = ap.bootstrap(resamples=20), ap.bootstrap(resamples=20), ap.bootstrap(resamples=20, seed=1)
    assert first == again and first != other
    assert first["mAP"][0] < ap.evaluate()["mAP"] < first["mAP"][1]
