"""Metrics on hand-made masks with known answers."""
import numpy as np
import pytest

from hyperseg_ros.training.metrics import IoUAccumulator, MaskAP, boundary_f, identity_switches, iou, j_and_f


def box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_iou_and_cumulative_vs_mean():
    a, b = box(10, 10, 0, 10, 0, 5), box(10, 10, 0, 10, 0, 10)
    assert iou(a, b) == pytest.approx(0.5)
    assert iou(np.zeros((4, 4), bool), np.zeros((4, 4), bool)) == 1.0
    acc = IoUAccumulator()
    acc.add(a, b)  # I=50, U=100
    acc.add(box(10, 10, 0, 1, 0, 1), box(10, 10, 0, 1, 0, 2))  # I=1, U=2
    assert acc.ciou == pytest.approx(51 / 102)
    assert acc.giou == pytest.approx((0.5 + 0.5) / 2)


def test_boundary_f_perfect_shifted_and_empty():
    gt = box(100, 100, 20, 60, 20, 60)
    assert boundary_f(gt, gt) == 1.0
    assert boundary_f(box(100, 100, 21, 61, 20, 60), gt) == 1.0  # 1 px shift is inside the 0.8% diag tolerance (2 px)
    assert boundary_f(box(100, 100, 40, 80, 40, 80), gt) < 0.5
    empty = np.zeros((100, 100), bool)
    assert boundary_f(empty, empty) == 1.0 and boundary_f(empty, gt) == 0.0


def test_j_and_f_over_frames():
    gt = [box(50, 50, 10, 30, 10, 30)] * 3 + [np.zeros((50, 50), bool)]
    jf, j, f = j_and_f(gt, gt)
    assert (jf, j, f) == (1.0, 1.0, 1.0)
    preds = gt[:3] + [box(50, 50, 0, 5, 0, 5)]  # a false positive while the object is hidden
    jf, j, f = j_and_f(preds, gt)
    assert j == pytest.approx(0.75) and f == pytest.approx(0.75) and jf == pytest.approx(0.75)


def test_identity_switches():
    a, b = box(20, 20, 0, 10, 0, 10), box(20, 20, 10, 20, 10, 20)
    gt = [{1: a, 2: b}] * 4
    assert identity_switches(gt, [{7: a, 8: b}] * 4) == 0
    swapped = [{7: a, 8: b}, {7: a, 8: b}, {8: a, 7: b}, {8: a, 7: b}]
    assert identity_switches(gt, swapped) == 2
    new_id = [{7: a, 8: b}, {}, {9: a, 8: b}, {9: a, 8: b}]  # lost for a frame, comes back as a new id
    assert identity_switches(gt, new_id) == 1


def test_mask_ap_perfect_half_and_false_positive():
    m1, m2 = box(40, 40, 0, 20, 0, 20), box(40, 40, 20, 40, 20, 40)
    ap = MaskAP()
    ap.add([("red circle", m1), ("star", m2)], [("red circle", 0.9, m1), ("star", 0.8, m2)], 40, 40)
    assert ap.evaluate() == {"mAP": pytest.approx(1.0), "AP50": pytest.approx(1.0)}
    ap = MaskAP()
    ap.add([("star", m1)], [("star", 0.9, m2), ("star", 0.5, m1)], 40, 40)  # top-scored prediction is wrong
    result = ap.evaluate()
    assert result["AP50"] == pytest.approx(0.5, abs=0.01)
    ap = MaskAP()
    ap.add([("star", m1)], [], 40, 40)
    assert ap.evaluate()["AP50"] == 0.0


def test_without_pycocotools_mask_ap_is_nan_with_a_reason(monkeypatch):
    import sys

    for name in [m for m in sys.modules if m.split(".")[0] == "pycocotools"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # import pycocotools -> ImportError
    ap = MaskAP()
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    ap.add([("circle", mask)], [("circle", 0.9, mask)], 8, 8)
    assert ap.skipped.startswith("mask AP skipped: pycocotools is not installed")
    assert all(np.isnan(v) for v in ap.evaluate().values())
    assert all(np.isnan(v) for interval in ap.bootstrap(5).values() for v in interval)
