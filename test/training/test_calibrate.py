"""Threshold choice per task from an evaluation's curves: known answers for each rule."""
import json

import pytest

from hyperseg_ros.model import load_model
from hyperseg_ros.training.calibrate import choose, text_curve, write_thresholds
from hyperseg_ros.training.evaluate import THRESHOLD_GRID


def _record(target: bool, score: float) -> dict:
    return {"target": target, "score": score, "inter": 80 if target else 0, "union": 100, "gt": 90 if target else 0}


def _report(text_records, ov_tp, ov_predicted, ov_truth, prompt_jf) -> dict:
    return {"split": "val", "curves": {"thresholds": list(THRESHOLD_GRID), "referring": text_records,
                                       "reasoning": text_records,
                                       "open_vocabulary": {"tp": ov_tp, "predicted": ov_predicted, "truth": ov_truth},
                                       "visual_prompt": {"jf": prompt_jf, "clips": 10}}}


def test_text_threshold_keeps_false_abstention_at_most_five_percent():
    # 20 commands with a target scoring 0.62 .. 0.91 (one at 0.41), 10 without scoring 0.3 .. 0.57
    records = [_record(True, 0.41)] + [_record(True, 0.62 + 0.015 * k) for k in range(19)]
    records += [_record(False, 0.3 + 0.03 * k) for k in range(10)]
    grid = list(THRESHOLD_GRID)
    curve = text_curve(records, grid)
    chosen = choose(_report(records, [0] * len(grid), [0] * len(grid), 1, [0.5] * len(grid)))["referring"]
    # 0.6 leaves every absent command unanswered and only the 0.41 target (5%) unanswered
    assert chosen == pytest.approx(0.6)
    assert curve["false_abstention"][grid.index(0.6)] == pytest.approx(0.05)
    assert curve["no_match"][grid.index(0.6)] == 1.0
    assert curve["ciou"][grid.index(0.2)] == pytest.approx(80 * 20 / (100 * 20))


def test_open_vocabulary_threshold_is_the_best_f1_and_prompts_the_best_jf():
    grid = list(THRESHOLD_GRID)
    predicted = [100 - 5 * k for k in range(len(grid))]
    tp = [min(p, 60) - (k * 3 if k > 6 else 0) for k, p in enumerate(predicted)]  # precision rises, recall falls late
    jf = [0.6, 0.62, 0.7, 0.7] + [0.5] * (len(grid) - 4)
    chosen = choose(_report([_record(True, 0.9), _record(False, 0.1)], tp, predicted, 80, jf))
    f1 = [2 * t / (p + 80) for t, p in zip(tp, predicted)]
    assert chosen["open_vocabulary"] == grid[f1.index(max(f1))]
    assert chosen["visual_prompt"] == grid[2]  # ties go to the lower threshold


def test_written_thresholds_are_what_the_session_applies(tmp_path, model_dir):
    import shutil

    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    write_thresholds(target, {"referring": 0.35, "reasoning": 0.4, "open_vocabulary": 0.55, "visual_prompt": 0.25})
    assert json.loads((target / "config.json").read_text())["score_thresholds"]["open_vocabulary"] == 0.55
    from hyperseg_ros.model.session import SegmentationSession

    session = SegmentationSession(*load_model(str(target)))
    assert session.threshold("reasoning") == 0.4 and session.threshold("visual_prompt") == 0.25
    assert SegmentationSession(*load_model(str(target)), score_threshold=0.7).threshold("reasoning") == 0.7
    bad = json.loads((target / "config.json").read_text())
    bad["score_thresholds"] = {"referring": 1.5}
    (target / "config.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="score_thresholds"):
        load_model(str(target))
