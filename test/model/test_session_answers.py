"""SegmentationSession answers that a wrong program gets wrong: the label of the category that wins
(planted predictor outputs where the winner is not category 0), the temporal latents of the fine-grained
perceiver (frame 1 depends on frame 0 through them) and a new command's own wording."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tiny_model import frame

from hyperseg_ros.command import Command
from hyperseg_ros.model.session import SegmentationSession

H, W = 48, 64  # tiny: pyramid 64 px -> 16x16 mask logits, the image's 48 rows in the first 12
CATEGORIES = ("red circle", "star", "yellow", "triangle")
# query -> the category planted to win it (none of them is category 0 but query 2's)
WINNERS = {0: 2, 1: 3, 2: 0, 3: 1}


def _planted(real, scoring: str):
    """The real predictor output with planted class logits (query q: WINNERS[q] wins by a margin)
    and masks (query q: logit columns 4q..4q+2, rows 2..8 -> image columns 16q..16q+11, rows 8..35)."""
    planted = torch.full_like(real.class_logits, -6.0)
    for q, c in WINNERS.items():
        planted[0, q, c] = 6.0
        planted[0, q, (c + 1) % len(CATEGORIES)] = 2.0  # a runner-up, so the winner has to be picked
    if scoring == "softmax_background":
        planted[0, :, -1] = -6.0  # the background column
    mask_logits = torch.full_like(real.mask_logits, -8.0)
    for q in WINNERS:
        mask_logits[0, q, 2:9, 4 * q:4 * q + 3] = 8.0
    if scoring == "name_scorer":  # the name scorer's logits decide; the class head's point at category 0
        heads = torch.full_like(planted, -6.0)
        heads[0, :, 0] = 6.0
        return dataclasses.replace(real, class_logits=heads, name_logits=planted, mask_logits=mask_logits)
    return dataclasses.replace(real, class_logits=planted, mask_logits=mask_logits)


@pytest.mark.parametrize("scoring", ["sigmoid", "softmax_background", "name_scorer"])
def test_open_vocabulary_labels_each_instance_with_its_winning_category(tiny, monkeypatch, scoring):
    model, tokenizer = tiny
    monkeypatch.setattr(model.config, "open_vocabulary_scoring", "sigmoid" if scoring == "name_scorer" else scoring)
    real_segment = model.segment
    monkeypatch.setattr(model, "segment", lambda *a, **k: _planted(real_segment(*a, **k), scoring))
    session = SegmentationSession(model, tokenizer, score_threshold=0.5, max_instances=10)
    session.set_command(Command("open_vocabulary", categories=CATEGORIES))
    for t in range(2):  # the language frame, then a frame on the cached language output
        instances = session.process(frame(t, H, W)).instances
        assert len(instances) == len(WINNERS), [(i.label, i.class_id) for i in instances]
        for inst in instances:
            q = int(np.nonzero(inst.mask.any(0))[0].min()) // 16  # the query of this mask, by its columns
            assert (inst.class_id, inst.label) == (WINNERS[q], CATEGORIES[WINNERS[q]]), f"query {q}"
            assert inst.score > 0.9
        assert sorted(inst.label for inst in instances) == sorted(CATEGORIES)


def _raw_outputs(session: SegmentationSession, monkeypatch) -> list:
    """Record the predictor's outputs of every frame the session processes."""
    seen = []
    real_segment = session.model.segment

    def recording(*args, **kwargs):
        out = real_segment(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(session.model, "segment", recording)
    return seen


@pytest.mark.parametrize("command", [Command("referring", "the red circle"),
                                     Command("open_vocabulary", categories=("blue star", "yellow"))])
def test_frame_one_depends_on_frame_zero_through_the_temporal_latents(tiny, monkeypatch, command):
    model, tokenizer = tiny
    session = SegmentationSession(model, tokenizer, score_threshold=0.0, llm_every_n_frames=1)
    seen = _raw_outputs(session, monkeypatch)

    def frame_one(drop_latents: bool):
        session.set_command(command)
        session.process(frame(20))
        assert session.state.latents is not None  # frame 0 handed its latents on
        if drop_latents:
            session.state.latents = None  # as if frame 0 had not been seen (the learned latents)
        result = session.process(frame(21))
        assert result.language_pass
        out = seen[-1]
        logits = out.refer_logits if command.task != "open_vocabulary" else out.class_logits
        return out.mask_logits.clone(), logits.clone(), result

    carried, again, dropped = frame_one(False), frame_one(False), frame_one(True)
    for a, b in zip(carried[:2], again[:2]):
        torch.testing.assert_close(a, b)  # deterministic: a difference below is the latents' doing
    mask_change = (carried[0] - dropped[0]).abs().max().item()
    logit_change = (carried[1] - dropped[1]).abs().max().item()
    assert mask_change > 1e-3 and logit_change > 1e-3, (mask_change, logit_change)
    scores = [[round(i.score, 6) for i in r[2].instances] for r in (carried, dropped)]
    assert scores[0] != scores[1]


def test_a_new_command_is_answered_from_its_own_words(tiny):
    """After a command, the next one's answer equals a fresh session's: no prompt of the first is reused."""
    model, tokenizer = tiny
    first, second = Command("referring", "the red circle"), Command("referring", "blue star")
    session = SegmentationSession(model, tokenizer, score_threshold=0.0)
    session.set_command(first)
    before = session.process(frame(0)).instances[0]
    session.set_command(second)
    after = session.process(frame(0)).instances[0]
    fresh = SegmentationSession(model, tokenizer, score_threshold=0.0)
    fresh.set_command(second)
    expected = fresh.process(frame(0)).instances[0]
    assert after.label == "blue star"
    assert after.score == pytest.approx(expected.score, abs=1e-6) and np.array_equal(after.mask, expected.mask)
    assert after.score != pytest.approx(before.score, abs=1e-6)  # the two wordings answer differently
