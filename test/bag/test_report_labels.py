"""The bag report's verdict on open vocabulary: the right mask under the wrong name is not found."""
from __future__ import annotations

import array

import numpy as np
from hyperseg_ros.msg import Segmentation, SegmentedInstance

from hyperseg_ros import mask_rle
from hyperseg_ros.bag.report import judge

H, W = 40, 60


def _seg(task: str, *labelled: tuple[str, np.ndarray]) -> Segmentation:
    seg = Segmentation(task=task, command_id="c", height=H, width=W)
    for k, (label, mask) in enumerate(labelled):
        seg.instances.append(SegmentedInstance(id=k + 1, label=label, score=0.9,
                                               mask_rle=array.array("I", mask_rle.encode(mask).tolist())))
    return seg


def test_open_vocabulary_targets_need_their_name():
    ring, circle = np.zeros((H, W), bool), np.zeros((H, W), bool)
    ring[5:15, 5:15] = True
    circle[20:35, 30:50] = True
    truth = _seg("open_vocabulary", ("ring", ring), ("blue circle", circle))
    assert judge(truth, _seg("open_vocabulary", ("Ring", ring), ("blue circle", circle)))["found"]
    wrong = judge(truth, _seg("open_vocabulary", ("blue circle", ring), ("blue circle", circle)))
    assert not wrong["found"] and wrong["ids"] == {2: 2} and wrong["ious"][1] == 0.0
    # other tasks name the command, not a category: the mask decides
    assert judge(_seg("referring", ("the ring", ring)), _seg("referring", ("x", ring)))["found"]
