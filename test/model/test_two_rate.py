"""Two rates: the language side every `llm_every_n_frames` frames, the segmentation side on every frame.

The schedule and the cache on the tiny model; the right object on an easy clip with the shipped model.
"""
import numpy as np
import pytest
from tiny_model import frame

from hyperseg_ros.command import Command
from hyperseg_ros.model.session import SegmentationSession
from hyperseg_ros.world.scene import COLOURS, SceneObject, paint, visible_masks


def _signature(result):
    return [(inst.id, round(inst.score, 6), inst.mask.tobytes()) for inst in result.instances]


@pytest.mark.parametrize("command", [Command("referring", "the red circle"),
                                     Command("visual_prompt", boxes=((4.0, 6.0, 20.0, 14.0),), points=((50.0, 30.0),))])
def test_language_frames_equal_a_full_rate_session_over_those_frames(tiny, command):
    model, tokenizer = tiny
    two_rate = SegmentationSession(model, tokenizer, score_threshold=0.0, llm_every_n_frames=3,
                                   llm_rerun_score_threshold=0.0)
    full = SegmentationSession(model, tokenizer, score_threshold=0.0, llm_every_n_frames=1)
    two_rate.set_command(command)
    full.set_command(command)
    results = [two_rate.process(frame(i)) for i in range(7)]
    assert [r.language_pass for r in results] == [True, False, False, True, False, False, True]
    # the temporal adapter's latents pass from one language frame to the next, as at full rate
    assert [_signature(results[i]) for i in (0, 3, 6)] == [_signature(full.process(frame(i))) for i in (0, 3, 6)]


def test_frames_between_reuse_the_cached_language_output(tiny):
    model, tokenizer = tiny
    session = SegmentationSession(model, tokenizer, score_threshold=0.0, llm_every_n_frames=4,
                                  llm_rerun_score_threshold=0.0)
    session.set_command(Command("referring", "the red circle"))
    first = session.process(frame(0))
    cached = session.state.language
    assert first.language_pass and {"vanilla_encoder", "perceiver", "llm"} <= set(first.timings_ms)
    for i in (1, 2, 3):
        result = session.process(frame(i))
        assert not result.language_pass and session.state.language is cached
        assert not {"vanilla_encoder", "perceiver", "llm"} & set(result.timings_ms)
        assert {"pyramid_encoder", "predictor"} <= set(result.timings_ms)
        # the masks follow the new frame's features (same E_Q / E_P, new pyramid)
        assert _signature(result) != _signature(first)
    assert session.process(frame(4)).language_pass and session.state.language is not cached


def test_a_new_command_or_a_reset_runs_the_language_side_again(tiny):
    model, tokenizer = tiny
    session = SegmentationSession(model, tokenizer, score_threshold=0.0, llm_every_n_frames=100)
    session.set_command(Command("referring", "the red circle"))
    assert [session.process(frame(i)).language_pass for i in range(3)] == [True, False, False]
    session.reset()
    assert session.state.language is None
    assert [session.process(frame(i)).language_pass for i in range(2)] == [True, False]
    session.set_command(Command("referring", "blue star"))
    assert [session.process(frame(i)).language_pass for i in range(2)] == [True, False]


def test_llm_every_n_frames_must_be_positive(tiny):
    with pytest.raises(ValueError, match="llm_every_n_frames"):
        SegmentationSession(*tiny, llm_every_n_frames=0)


# ---- the shipped model on an easy clip: distinct colours and shapes on a plain background ----
H, W = 240, 320


def _easy_clip(frames: int, circle_visible=lambda t: True):
    """-> images, masks of the red circle; the circle moves right 6 px per frame."""
    objects = [SceneObject(2, "square", "blue", "medium", 230.0, 70.0, 50.0, 15.0, COLOURS["blue"]),
               SceneObject(3, "triangle", "yellow", "medium", 240.0, 175.0, 50.0, 0.0, COLOURS["yellow"])]
    background = np.full((H, W, 3), 128, np.float32)
    images, targets = [], []
    for t in range(frames):
        circle = SceneObject(1, "circle", "red", "medium", 60.0 + 6 * t, 130.0, 50.0, 0.0, COLOURS["red"])
        scene = objects + ([circle] if circle_visible(t) else [])
        masks, _ = visible_masks(scene, H, W)
        images.append(paint(background, scene, masks))
        targets.append(masks[-1] if circle_visible(t) else np.zeros((H, W), bool))
    return images, targets


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.fixture(scope="module")
def shipped():
    from hyperseg_ros.model import load_model

    return load_model("")


def test_shipped_model_keeps_the_right_object_between_language_passes(shipped):
    images, targets = _easy_clip(12)
    session = SegmentationSession(*shipped)  # the node's defaults: language every 4th frame
    assert session.llm_every_n_frames > 1
    session.set_command(Command("referring", "the red circle"))
    results = [session.process(image) for image in images]
    assert sum(r.language_pass for r in results) < len(results)
    for t, (result, target) in enumerate(zip(results, targets)):
        assert result.instances, f"frame {t}: nothing found"
        assert _iou(result.instances[0].mask, target) >= 0.8, f"frame {t}"
    assert {r.instances[0].id for r in results} == {1}


def test_shipped_model_reruns_the_language_side_when_the_target_is_lost(shipped):
    images, _ = _easy_clip(5, circle_visible=lambda t: t < 2)
    session = SegmentationSession(*shipped, llm_every_n_frames=100, llm_rerun_score_threshold=0.5)
    session.set_command(Command("referring", "the red circle"))
    passes = [session.process(image).language_pass for image in images]
    # found at frame 0; gone at frame 2: the cached E_Q / E_P score low, so the language side runs
    # again on that frame; it finds nothing either, so frames 3-4 wait for the regular schedule
    assert passes == [True, False, True, False, False]


def test_the_node_declares_the_session_defaults():
    from hyperseg_ros.model.session import LLM_EVERY_N_FRAMES, LLM_RERUN_SCORE_THRESHOLD
    from hyperseg_ros.perception_node import PARAMETERS

    assert PARAMETERS["llm_every_n_frames"].default == LLM_EVERY_N_FRAMES
    assert PARAMETERS["llm_rerun_score_threshold"].default == LLM_RERUN_SCORE_THRESHOLD
