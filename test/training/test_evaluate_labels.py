"""The evaluation's open-vocabulary scores on wrong answers: the right masks under wrong labels, and the
right labels on wrong masks (IoU 0.3 with their object), must not count as found."""
import numpy as np
import pytest

from hyperseg_ros.model.session import Instance
from hyperseg_ros.training.evaluate import Evaluation

OV_KEYS = ("open_vocabulary_precision", "open_vocabulary_recall", "open_vocabulary_ap50")


def part_of(mask: np.ndarray, share: float = 0.3) -> np.ndarray:
    """The first `share` of a mask's pixels (row-major): IoU with the mask = share, a wrong mask."""
    ys, xs = np.nonzero(mask)
    keep = max(1, int(round(share * len(ys))))
    out = np.zeros_like(mask)
    out[ys[:keep], xs[:keep]] = True
    return out


class Answers(Evaluation):
    """Answers every open-vocabulary command with one instance per target object: `label(name)` as its
    label and `mask(mask)` as its mask; other tasks get nothing (only open vocabulary is read here)."""

    label = staticmethod(lambda name: name)
    mask = staticmethod(lambda mask: mask)

    def __init__(self, *args):
        super().__init__(*args)
        self.ap_resamples = 5

    def predict(self, frames, wc, all_scores=False):
        out = []
        for scene in frames:
            found = []
            if wc.command.task == "open_vocabulary":
                index = {o.identity: i for i, o in enumerate(scene.objects)}
                for name, ids in zip(wc.command.categories, wc.category_targets):
                    for identity in ids:
                        m = scene.masks[index[identity]]
                        if m.any():
                            found.append(Instance(identity, self.label(name), -1, 0.9, self.mask(m), (0, 0, 1, 1)))
            out.append(found)
        return out


class RightMasksWrongLabels(Answers):
    label = staticmethod(lambda name: f"not {name}")


class RightLabelsWrongMasks(Answers):
    mask = staticmethod(part_of)


def _ov(cls) -> dict:
    metrics = cls(None, "val", 0).run(samples=12, clips=1, frames=8)["metrics"]
    return {k: metrics[k] for k in OV_KEYS}


def test_part_of_is_a_wrong_mask():
    m = np.zeros((20, 20), bool)
    m[2:12, 3:13] = True
    from hyperseg_ros.training.metrics import iou

    assert iou(part_of(m), m) == pytest.approx(0.3)


def test_right_answers_score_one():
    ov = _ov(Answers)
    assert all(ov[k]["value"] == pytest.approx(1.0) and ov[k]["n"] > 0 for k in OV_KEYS), ov


@pytest.mark.parametrize("cls", [RightMasksWrongLabels, RightLabelsWrongMasks])
def test_wrong_answers_score_zero(cls):
    ov = _ov(cls)
    assert all(ov[k]["value"] == 0.0 and ov[k]["n"] > 0 for k in OV_KEYS), ov
