"""Metrics on wrong answers with known scores: a right mask under a wrong label, a wrong mask (IoU 0.1-0.4)
under the right label, a half-right one at the threshold."""
import numpy as np

from hyperseg_ros.training.metrics import label_matches


def box(y0, y1, x0, x1, h=40, w=40):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


A, B = box(0, 20, 0, 20), box(20, 40, 20, 40)
WRONG_A = box(0, 20, 10, 30)  # IoU 1/3 with A
HALF_A = box(0, 20, 0, 10)  # IoU 0.5 with A
UNDER_A = box(0, 20, 0, 9)  # IoU 0.45


def test_label_matches_needs_the_right_label_and_the_right_mask():
    gt = [("red circle", A), ("star", B)]
    assert label_matches(gt, [("red circle", A), ("star", B)]) == 2
    assert label_matches(gt, [("Red Circle", A), ("STAR", B)]) == 2  # labels compare case-insensitively
    assert label_matches(gt, [("star", A), ("red circle", B)]) == 0  # right masks, swapped labels
    assert label_matches(gt, [("yellow", A), ("star", B)]) == 1
    assert label_matches(gt, [("red circle", WRONG_A), ("star", B)]) == 1  # a wrong mask
    assert label_matches(gt, [("red circle", HALF_A)]) == 1  # IoU 0.5 is at the threshold
    assert label_matches(gt, [("red circle", UNDER_A)]) == 0
    assert label_matches(gt, [("red circle", UNDER_A)], iou_threshold=0.4) == 1


def test_label_matches_is_one_to_one():
    gt = [("star", A), ("star", B)]
    assert label_matches(gt, [("star", A), ("star", A), ("star", A)]) == 1  # one object, found once
    assert label_matches(gt, [("star", B), ("star", A)]) == 2  # order does not matter
    # the assignment maximises IoU: the wrong mask takes no object from the right one
    assert label_matches([("star", A)], [("star", WRONG_A), ("star", A)]) == 1
    assert label_matches([], [("star", A)]) == 0 and label_matches(gt, []) == 0
