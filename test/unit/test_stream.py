"""StreamProcessor on the real (tiny) model: commands, ids, and the reset rules of the contract."""
import numpy as np
import pytest
import torch

from hyperseg_ros.command import Command, CommandError
from hyperseg_ros.model import load_model
from hyperseg_ros.model.session import SegmentationSession
from hyperseg_ros.stream import (
    RESET_COMMAND,
    RESET_FRAME_ID,
    RESET_IMAGE_SIZE,
    RESET_REQUESTED,
    RESET_STAMP_BACKWARDS,
    RESET_STAMP_GAP,
    StreamParams,
    StreamProcessor,
)
from hyperseg_ros.world.scene import draw_scene

MS = 1_000_000
CATEGORIES = ("circle", "square")


@pytest.fixture(scope="module")
def model(model_dir):
    torch.set_num_threads(1)
    return load_model(str(model_dir))


def _session(model):
    return SegmentationSession(*model, score_threshold=0.0)


def _frame(i, height=60, width=80):
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_default_categories_answer_until_a_command_and_state_carries_over(model):
    proc = StreamProcessor(_session(model), StreamParams(categories=CATEGORIES))
    first = proc.process(_frame(0), 0, "cam")
    assert (first.command.task, first.command.categories, first.command.id) == ("open_vocabulary", CATEGORIES, "")
    second = proc.process(_frame(1), 33 * MS, "cam")
    assert second.reset_reason is None
    assert proc.session.state.frame_index == 2  # temporal state carried from frame to frame


def test_without_default_categories_nothing_is_answered_before_a_command(model):
    proc = StreamProcessor(_session(model), StreamParams())
    assert proc.process(_frame(0), 0, "cam") is None
    proc.apply_command(Command(text="the red circle"))
    assert proc.process(_frame(1), 33 * MS, "cam").command.text == "the red circle"


def test_commands_get_ids_are_validated_and_apply_from_the_next_frame(model):
    proc = StreamProcessor(_session(model), StreamParams(categories=CATEGORIES))
    proc.process(_frame(0), 0, "cam")
    cmd = proc.apply_command(Command(task="", text="the red circle"))
    assert cmd.id and cmd.task == "referring"
    assert proc.apply_command(Command(text="the blue star", id="voice-7")).id == "voice-7"
    with pytest.raises(CommandError):
        proc.apply_command(Command(text="   "))
    with pytest.raises(CommandError):  # the last frame is 80x60: this box lies outside it
        proc.apply_command(Command(task="visual_prompt", boxes=((70, 10, 20, 10),)))
    out = proc.process(_frame(1), 33 * MS, "cam")
    assert (out.command.id, out.command.text, out.reset_reason) == ("voice-7", "the blue star", RESET_COMMAND)
    assert proc.session.state.frame_index == 1
    assert all(inst.class_id == -1 and inst.label == "the blue star" for inst in out.result.instances)


@pytest.mark.parametrize(
    "size,frame_id,stamp_ms,reason",
    [
        ((60, 80), "cam", 66, None),
        ((60, 80), "cam", 33 + 900, None),  # below the 1 s gap
        ((48, 64), "cam", 66, RESET_IMAGE_SIZE),
        ((60, 80), "other", 66, RESET_FRAME_ID),
        ((60, 80), "cam", 0, RESET_STAMP_BACKWARDS),
        ((60, 80), "cam", 33 + 1500, RESET_STAMP_GAP),
    ],
)
def test_reset_rules(model, size, frame_id, stamp_ms, reason):
    session = _session(model)
    resets = []
    original = session.reset
    session.reset = lambda: (resets.append(1), original())  # spy on the real session
    proc = StreamProcessor(session, StreamParams(temporal_reset_gap_s=1.0, categories=CATEGORIES))
    proc.process(_frame(0), 0, "cam")
    proc.process(_frame(1), 33 * MS, "cam")
    out = proc.process(_frame(2, *size), stamp_ms * MS, frame_id)
    assert out.reset_reason == reason
    assert len(resets) == (reason is not None)
    assert session.state.frame_index == (1 if reason else 3)


def test_reset_request_clears_state_and_keeps_the_command(model):
    proc = StreamProcessor(_session(model), StreamParams())
    cmd = proc.apply_command(Command(text="the red circle"))
    proc.process(_frame(0), 0, "cam")
    proc.process(_frame(1), 33 * MS, "cam")
    proc.reset()
    out = proc.process(_frame(2), 66 * MS, "cam")
    assert (out.reset_reason, out.command) == (RESET_REQUESTED, cmd)
    assert proc.session.state.frame_index == 1


def test_visual_prompt_applies_to_the_first_frame_after_it(model):
    proc = StreamProcessor(_session(model), StreamParams())
    assert proc.process(_frame(0), 0, "cam") is None
    cmd = proc.apply_command(Command(task="visual_prompt", boxes=((10, 10, 20, 20),), points=((50, 30),),
                                     stamp_ns=33 * MS))
    assert proc.pending_prompt_stamp() == 33 * MS
    out = proc.process(_frame(1), 33 * MS, "cam")
    assert proc.pending_prompt_stamp() is None and out.command == cmd
    assert proc.session.state.region_tokens is not None  # taken from this frame, then tracked
    assert {inst.id for inst in out.result.instances} <= {1, 2}


def test_results_are_the_sessions_results(model):
    """The stream adds rules, not results: same frames, same masks as a bare session."""
    proc = StreamProcessor(_session(model), StreamParams(categories=CATEGORIES))
    bare = _session(model)
    bare.set_command(Command(task="open_vocabulary", categories=CATEGORIES))
    compared = 0
    # world scenes, not noise: the model must answer something for the comparison to mean anything
    frames = [draw_scene(np.random.default_rng(i), 160, 120).image for i in range(3)]
    for i, frame in enumerate(frames):
        ours = proc.process(frame, i * 33 * MS, "cam").result.instances
        ref = bare.process(frame).instances
        compared += len(ref)
        assert [(a.id, a.label, a.score) for a in ours] == [(b.id, b.label, b.score) for b in ref]
        for a, b in zip(ours, ref):
            np.testing.assert_array_equal(a.mask, b.mask)
    assert compared > 0
