"""Fitting the open-vocabulary name scorer (training/train_name_scorer.py): which pairs are answers, that the
fit learns what the evidence says, and that the stage changes nothing but the scorer."""
import json

import numpy as np
import torch

from hyperseg_ros.model.name_scorer import EVIDENCE, NameScorer
from hyperseg_ros.training.train_name_scorer import fit, pair_targets


def test_each_object_is_answered_by_its_best_mask_under_its_own_category():
    """Object 0 (category 1) is covered by queries 0 and 2, query 2 better: only query 2 answers it; object 1
    (category 0) has no mask at IoU >= 0.5: no query answers it."""
    ious = np.array([[0.6, 0.1], [0.0, 0.45], [0.8, 0.0]])
    targets = pair_targets(ious, [1, 0], count=3)
    want = np.zeros((3, 3), np.float32)
    want[2, 1] = 1.0
    assert np.array_equal(targets, want)
    assert pair_targets(np.zeros((0, 2)), [0, 1], count=2).shape == (0, 2)


def test_the_fit_learns_which_evidence_marks_an_answer():
    """Answers are the pairs whose membership is high and whose mask is confident; the fitted scorer ranks
    held-out answers above the rest."""
    generator = torch.Generator().manual_seed(0)
    evidence = torch.randn(4000, len(EVIDENCE), generator=generator) * 2 + 5  # far from standardised
    member, confidence = EVIDENCE.index("membership"), EVIDENCE.index("mask confidence")
    targets = ((evidence[:, member] > 6) & (evidence[:, confidence] > 4)).float()
    scorer = NameScorer(8)
    losses = fit(scorer, evidence[:3000], targets[:3000], steps=300)
    assert losses[-1] < 0.5 * losses[0]
    assert torch.allclose(scorer.mean, evidence[:3000].mean(0))
    with torch.no_grad():
        logits = scorer(evidence[3000:])
    held = targets[3000:].bool()
    assert ((logits > 0) == held).float().mean() > 0.95


def test_the_stage_fits_only_the_scorer_of_a_shipped_model(tmp_path):
    """A few scenes from the shipped weights: a model directory that loads, every weight but the scorer's the
    shipped one, the scorer refitted."""
    from hyperseg_ros.model import default_model_dir, load_model
    from hyperseg_ros.training.train_name_scorer import main

    summary = main(["--init-from", str(default_model_dir()), "--out", str(tmp_path / "m"), "--scenes", "6",
                    "--steps", "20", "--threads", "1"])
    assert summary["positives"] > 0 and summary["pairs"] > summary["positives"]
    shipped, _ = load_model("")
    fitted, _ = load_model(str(tmp_path / "m"))
    assert fitted.config.name_scorer_hidden > 0
    state = fitted.state_dict()
    for name, value in shipped.state_dict().items():
        if not name.startswith("predictor.name_scorer."):
            assert torch.equal(state[name], value), name
    assert not torch.equal(state["predictor.name_scorer.mean"],
                           shipped.state_dict().get("predictor.name_scorer.mean", torch.zeros(len(EVIDENCE))))
    assert json.loads((tmp_path / "m" / "name_scorer_training.json").read_text())["scenes"] == 6
