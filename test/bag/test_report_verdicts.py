"""`hyperseg_bag report`'s verdict against ground truth on hand-made answers: a right mask is found, a
wrong one (IoU 0.33 with the target) or a half-right one just under the threshold is not."""
from __future__ import annotations

import array

import numpy as np
import pytest
from hyperseg_ros.msg import Segmentation, SegmentedInstance

from hyperseg_ros import mask_rle
from hyperseg_ros.bag.report import _against_truth, _verdict, judge

H, W = 60, 80


def square(y: int, x: int, h: int = 20, w: int = 20) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y:y + h, x:x + w] = True
    return m


TARGET = square(10, 10)  # 400 px
OTHER = square(35, 50)


def msg(stamp: int, *masks: np.ndarray, ids=None, task="referring") -> Segmentation:
    seg = Segmentation(task=task, command_id="c1", text="the red circle", height=H, width=W)
    seg.header.stamp.sec, seg.header.stamp.nanosec = divmod(stamp, 10**9)
    for k, m in enumerate(masks):
        seg.instances.append(SegmentedInstance(id=(ids or range(1, len(masks) + 1))[k], label="x", score=0.9,
                                               mask_rle=array.array("I", mask_rle.encode(m).tolist())))
    return seg


@pytest.mark.parametrize("answer,found,iou", [
    (TARGET, True, 1.0),
    (square(10, 10, 20, 10), True, 0.5),  # half the target: IoU exactly at the threshold
    (square(10, 10, 20, 9), False, 0.45),  # just under it
    (square(10, 20), False, 0.333),  # a wrong mask: shifted by half its width
    (square(12, 13), True, 0.619),  # 18x17 of 20x20 shifted by (2, 3)
    (OTHER, False, 0.0),
])
def test_one_target_found_only_by_a_right_mask(answer, found, iou):
    v = judge(msg(1, TARGET, ids=[5]), msg(1, answer, ids=[7]))
    assert (v["found"], v["ious"], v["targets"], v["answered"], v["instances"]) == (found, {5: iou}, 1, True, 1)
    assert v["ids"] == ({5: 7} if found else {})
    assert ("FOUND" if found else "MISSED") in _verdict(v)
    assert (f"target 5 -> #7 IoU {iou:.2f}" if found else f"target 5 missed (best IoU {iou:.2f})") in _verdict(v)


def test_the_best_instance_answers_each_target():
    v = judge(msg(1, TARGET, OTHER, ids=[1, 2]), msg(1, square(10, 20), TARGET, OTHER, ids=[4, 8, 9]))
    assert v["found"] and v["ids"] == {1: 8, 2: 9} and v["ious"] == {1: 1.0, 2: 1.0} and v["instances"] == 3
    half = judge(msg(1, TARGET, OTHER, ids=[1, 2]), msg(1, TARGET, square(10, 20), ids=[4, 8]))
    assert not half["found"] and half["ids"] == {1: 4}  # every target must be found
    assert "target 2 missed (best IoU 0.00)" in _verdict(half)


def test_no_answer_and_no_target():
    silent = judge(msg(1, TARGET, ids=[1]), None)
    assert (silent["found"], silent["answered"], silent["instances"], silent["ids"]) == (False, False, 0, {})
    empty_truth = judge(msg(1), msg(1))
    assert (empty_truth["targets"], empty_truth["found"], empty_truth["instances"]) == (0, True, 0)
    assert _verdict(empty_truth) == "ground truth: no target on this frame"
    shown = judge(msg(1), msg(1, OTHER))
    assert _verdict(shown) == "ground truth: no target on this frame (something shown)"


def test_summary_counts_found_frames_ids_and_empty_answers():
    stamps = [10, 20, 30, 40, 50, 60]
    truths = {s: msg(s, TARGET, ids=[1]) for s in stamps[:4]} | {s: msg(s) for s in stamps[4:]}
    segs = {10: msg(10, TARGET, ids=[3]), 20: msg(20, square(10, 20), ids=[3]),  # a wrong mask
            30: msg(30, square(11, 11), ids=[4]),  # found again, under another id; 40: not answered
            50: msg(50), 60: msg(60, OTHER)}  # no target: an empty answer, then something shown
    [entry] = _against_truth(segs, truths, stamps)
    assert (entry["frames"], entry["answered"], entry["target_frames"], entry["found_frames"]) == (6, 5, 4, 2)
    assert entry["found_share"] == 0.5 and entry["ids"] == {"1": [3, 4]} and entry["ids_per_target"] == 2
    assert (entry["no_target_frames"], entry["empty_when_no_target"]) == (2, 1)
    assert (entry["task"], entry["command_id"], entry["first_frame"]) == ("referring", "c1", 0)
