"""A visual prompt is checked against the frame it applies to: a box outside that frame rejects
the command (reported, the previous command stays), never the frames that follow."""
import numpy as np
import pytest
import torch

from hyperseg_ros.command import Command
from hyperseg_ros.model import load_model
from hyperseg_ros.model.session import SegmentationSession
from hyperseg_ros.stream import RESET_IMAGE_SIZE, StreamParams, StreamProcessor

MS = 1_000_000


@pytest.fixture(scope="module")
def model(model_dir):
    torch.set_num_threads(1)
    return load_model(str(model_dir))


def _frame(i, height=60, width=80):
    return np.random.default_rng(i).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _session(model):
    return SegmentationSession(*model, score_threshold=0.0)


def test_a_box_outside_the_first_frame_never_stops_the_frames(model):
    proc = StreamProcessor(_session(model), StreamParams(categories=("circle",)))
    # no frame seen yet: nothing to check the box against on receipt
    proc.apply_command(Command(task="visual_prompt", boxes=((5000, 5000, 100, 100),), id="far"))
    for i in range(3):
        out = proc.process(_frame(i), i * 33 * MS, "cam")
        assert out.command.task == "open_vocabulary"  # the default task goes on answering


def test_a_prompt_for_a_larger_frame_does_not_apply_when_the_frame_shrinks(model):
    proc = StreamProcessor(_session(model), StreamParams(categories=("circle",)))
    proc.process(_frame(0), 0, "cam")  # 80x60: the point fits on receipt
    proc.apply_command(Command(task="visual_prompt", points=((70.0, 50.0),), id="shrunk"))
    out = proc.process(_frame(1, 30, 40), 33 * MS, "cam")  # the frame it applies to is 40x30
    assert out.command.task == "open_vocabulary"


def test_the_rejection_is_reported_with_its_reason(model):
    from hyperseg_ros.command import REJECT_OUTSIDE_IMAGE

    rejected = []
    proc = StreamProcessor(_session(model), StreamParams(categories=("circle",)),
                           on_rejected=lambda cmd, err: rejected.append((cmd.id, err.reason)))
    proc.apply_command(Command(task="visual_prompt", boxes=((5000, 5000, 100, 100),), id="far"))
    proc.process(_frame(0), 0, "cam")
    proc.process(_frame(1), 33 * MS, "cam")
    assert rejected == [("far", REJECT_OUTSIDE_IMAGE)]  # once, when it met its frame


def test_a_size_change_keeps_the_prompts_region_tokens(model):
    proc = StreamProcessor(_session(model), StreamParams(categories=("circle",)))
    proc.process(_frame(0), 0, "cam")
    proc.apply_command(Command(task="visual_prompt", boxes=((60, 40, 20, 20),), id="vp"))
    proc.process(_frame(1), 33 * MS, "cam")
    tokens = proc.session.state.region_tokens
    out = proc.process(_frame(2, 30, 40), 66 * MS, "cam")  # the box would lie outside this frame
    assert out.reset_reason == RESET_IMAGE_SIZE and out.command.id == "vp"
    assert proc.session.state.region_tokens is tokens  # drawn once, on the prompt's own frame
    assert all(np.isfinite(inst.score) for inst in out.result.instances)
