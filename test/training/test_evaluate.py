"""The evaluation: known answers (perfect predictions score 1.0, empty ones score 0 and fail every
target) and an end-to-end run through SegmentationSession that writes its report files."""
import json

import numpy as np
import pytest
import torch

from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.session import Instance, SegmentationSession
from hyperseg_ros.model.tokenizer import build_word_tokenizer
from hyperseg_ros.training.evaluate import REPORT_ORDER, TARGETS, Evaluation, evaluate, markdown
from hyperseg_ros.world.vocabulary import world_words


def _instance(identity: int, label: str, mask: np.ndarray) -> Instance:
    return Instance(identity, label, -1, 1.0, mask, (0, 0, 1, 1))


class Oracle(Evaluation):
    """Answers every command with its ground truth."""

    def __init__(self, *args):
        super().__init__(*args)
        self.ap_resamples = 10

    def predict(self, frames, wc, all_scores=False):
        out = []
        for scene in frames:
            index = {o.identity: i for i, o in enumerate(scene.objects)}
            if wc.command.task == "open_vocabulary":
                found = [_instance(identity, name, scene.masks[index[identity]])
                         for name, ids in zip(wc.command.categories, wc.category_targets) for identity in ids
                         if scene.masks[index[identity]].any()]
            else:
                found = [_instance(1, "", scene.masks[index[i]]) for i in wc.targets if scene.masks[index[i]].any()]
            out.append(found)
        return out


class Silent(Evaluation):
    """Answers nothing, ever."""

    def __init__(self, *args):
        super().__init__(*args)
        self.ap_resamples = 10

    def predict(self, frames, wc, all_scores=False):
        return [[] for _ in frames]


@pytest.fixture(scope="module", params=["val", "shifted"])
def split(request):
    return request.param


def test_perfect_predictions_score_one_and_meet_every_target(split):
    report = Oracle(None, split, 0).run(samples=24, clips=3, frames=8, still=6)
    m = report["metrics"]
    for key in REPORT_ORDER:
        expected = {"false_abstention_rate": 0.0, "id_switches_per_100_frames": 0.0}.get(key, 1.0)
        assert m[key]["value"] == pytest.approx(expected), key
        assert m[key]["n"] > 0, key
    assert all(report["passed"].values())
    for kinds in report["per_kind"].values():
        assert all(s["value"] == pytest.approx(1.0) for s in kinds.values() if s["n"])


def test_empty_predictions_score_zero_and_fail_every_target(split):
    report = Silent(None, split, 0).run(samples=24, clips=3, frames=8, still=6)
    m = report["metrics"]
    assert m["referring_ciou"]["value"] == 0.0 and m["reasoning_ciou"]["value"] == 0.0
    assert m["id_coverage"]["value"] == 0.0 and m["open_vocabulary_recall"]["value"] == 0.0
    assert m["open_vocabulary_ap50"]["value"] == 0.0 and m["false_abstention_rate"]["value"] == 1.0
    assert m["no_match_rate"]["value"] == 1.0  # abstaining is right here, and is judged with the false abstentions
    for key in ("open_vocabulary_label_accuracy", "open_vocabulary_permutation_consistency",
                "first_frame_agreement_referring", "first_frame_agreement_open_vocabulary"):
        assert m[key]["n"] == 0 and not report["passed"][key], key  # nothing answered: nothing to agree on
    assert m["open_vocabulary_distinct_labels"]["value"] == 0.0
    assert not any(report["passed"].values()), report["passed"]
    assert set(report["passed"]) == set(TARGETS)


class Alternating(Oracle):
    """Right on every other command, silent on the rest."""

    calls = 0

    def predict(self, frames, wc, all_scores=False):
        self.calls += 1
        return super().predict(frames, wc) if self.calls % 2 else [[] for _ in frames]


def test_intervals_hold_the_value_and_show_the_uncertainty():
    report = Alternating(None, "val", 0).run(samples=24, clips=4, frames=8, still=6)
    for key in ("referring_ciou", "reasoning_ciou", "open_vocabulary_recall", "video_jf", "visual_prompt_box_jf"):
        s = report["metrics"][key]
        assert s["low"] - 1e-9 <= s["value"] <= s["high"] + 1e-9, key
        assert 0.0 < s["value"] < 1.0 and s["high"] - s["low"] > 0.1, key  # a few samples: a wide interval


class FirstCategory(Oracle):
    """Right masks, but every instance named after the first category of the list."""

    def predict(self, frames, wc, all_scores=False):
        answers = super().predict(frames, wc, all_scores)
        if wc.command.task == "open_vocabulary":
            first = wc.command.categories[0]
            answers = [[Instance(i.id, first, 0, i.score, i.mask, i.box) for i in found] for found in answers]
        return answers


def test_labels_that_follow_the_list_position_fail_the_naming_metrics():
    m = FirstCategory(None, "val", 0).run(samples=24, clips=2, frames=8, still=2)["metrics"]
    assert m["open_vocabulary_label_accuracy"]["value"] < 0.8
    assert m["open_vocabulary_permutation_consistency"]["value"] < 0.8
    assert m["open_vocabulary_distinct_labels"]["value"] < 0.8
    assert m["open_vocabulary_precision"]["value"] < 0.8 and m["open_vocabulary_recall"]["value"] < 0.8


def test_evaluate_tiny_model_writes_a_complete_report(tmp_path):
    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(world_words())
    model = HyperSeg(HyperSegConfig.from_size("tiny", vocab_size=len(tokenizer)))
    report = evaluate(SegmentationSession(model, tokenizer), "shifted", 0, samples=3, clips=1, frames=8, out=tmp_path,
                      still=2)
    for key in TARGETS:
        assert key in report and key in report["passed"]
    for key in REPORT_ORDER:
        v = report[key]
        assert v != v or v >= 0.0, key  # NaN only when a slice has no such sample
    assert report["median_frame_ms"] > 0
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["split"] == "shifted" and saved["metrics"]["referring_ciou"]["n"] >= 1
    md = (tmp_path / "eval.md").read_text()
    assert md == markdown(report) and "| referring_ciou |" in md and "referring: superlative" in md
    assert (tmp_path / "eval_grid.png").stat().st_size > 1000
