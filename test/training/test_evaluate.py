"""The evaluation runs end to end through SegmentationSession and writes its report files."""
import json

import torch

from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.session import SegmentationSession
from hyperseg_ros.model.tokenizer import build_word_tokenizer
from hyperseg_ros.training.evaluate import TARGETS, evaluate, markdown
from hyperseg_ros.world.vocabulary import world_words


def test_evaluate_tiny_model_writes_a_complete_report(tmp_path):
    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(world_words())
    model = HyperSeg(HyperSegConfig.from_size("tiny", vocab_size=len(tokenizer)))
    report = evaluate(SegmentationSession(model, tokenizer), "val", 0, samples=3, clips=1, frames=8, out=tmp_path)
    for key in TARGETS:
        assert key in report and key in report["passed"]
    for key in ("referring_giou", "reasoning_giou", "open_vocabulary_ap50", "open_vocabulary_map", "video_jf",
                "visual_prompt_box_jf", "visual_prompt_point_jf"):
        v = report[key]
        assert v != v or 0.0 <= v <= 1.0, key  # NaN only when a split slice has no such sample
    assert report["id_switches_per_100_frames"] >= 0 and report["median_frame_ms"] > 0
    assert json.loads((tmp_path / "eval.json").read_text())["split"] == "val"
    md = (tmp_path / "eval.md").read_text()
    assert md == markdown(report) and "| referring_ciou |" in md
    assert (tmp_path / "eval_grid.png").stat().st_size > 1000
