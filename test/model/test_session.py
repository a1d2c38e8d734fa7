"""SegmentationSession end to end on the tiny model: every task, temporal state, reset, regions."""
import numpy as np
import pytest
import torch
from tiny_model import frame

from hyperseg_ros.command import Command, CommandError
from hyperseg_ros.model.session import FrameResult, SegmentationSession, TemporalState

H, W = 48, 64
PER_FRAME_STAGES = {"preprocess", "pyramid_encoder", "predictor", "postprocess", "total"}
STAGES = PER_FRAME_STAGES | {"vanilla_encoder", "perceiver", "llm"}  # a frame with the language pass


def _session(tiny, command, **kwargs):
    model, tokenizer = tiny
    # threshold 0: the random tiny model's scores are low; every task path must still produce masks
    session = SegmentationSession(model, tokenizer, score_threshold=kwargs.pop("score_threshold", 0.0), **kwargs)
    session.set_command(command)
    return session


def _check_instances(result: FrameResult, height=H, width=W):
    assert set(result.timings_ms) == (STAGES if result.language_pass else PER_FRAME_STAGES)
    assert all(v >= 0 for v in result.timings_ms.values())
    scores = [inst.score for inst in result.instances]
    assert scores == sorted(scores, reverse=True)
    for inst in result.instances:
        assert inst.id >= 1 and 0.0 <= inst.score <= 1.0
        assert inst.mask.shape == (height, width) and inst.mask.dtype == bool and inst.mask.any()
        ys, xs = np.nonzero(inst.mask)
        assert inst.box == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)


@pytest.mark.parametrize("task,text", [("referring", "the red circle"), ("reasoning", "the shape like the sky")])
def test_referring_and_reasoning_give_one_persistent_target(tiny, task, text):
    session = _session(tiny, Command(task, text))
    results = [session.process(frame(i)) for i in range(3)]
    for r in results:
        _check_instances(r)
        assert len(r.instances) == 1
        inst = r.instances[0]
        assert inst.label == text and inst.class_id == -1
    assert [r.instances[0].id for r in results] == [1, 1, 1]
    assert session.state.frame_index == 3


def test_referring_below_threshold_is_no_instance(tiny):
    session = _session(tiny, Command("referring", "the red circle"), score_threshold=1.0)
    assert session.process(frame(0)).instances == []
    assert session.state.target_id == 0


def test_open_vocabulary_labels_and_tracked_ids(tiny):
    categories = ("red circle", "star", "yellow")
    session = _session(tiny, Command("open_vocabulary", categories=categories), max_instances=3)
    first = session.process(frame(0))
    _check_instances(first)
    assert 1 <= len(first.instances) <= 3
    for inst in first.instances:
        assert inst.label == categories[inst.class_id]
    assert len({inst.id for inst in first.instances}) == len(first.instances)
    # the same frame again: the tracker re-identifies the same objects
    again = session.process(frame(0))
    assert {inst.id for inst in again.instances} & {inst.id for inst in first.instances}
    assert len(session.state.tracker.tracks) >= 1


def test_masks_are_at_input_resolution(tiny):
    session = _session(tiny, Command("open_vocabulary", categories=("star",)))
    for height, width in ((37, 91), (120, 160)):
        session.reset()
        _check_instances(session.process(frame(3, height, width)), height, width)


@pytest.mark.parametrize("prompts", [dict(boxes=((4.0, 6.0, 20.0, 14.0), (40.0, 20.0, 10.0, 10.0))),
                                     dict(points=((10.0, 12.0), (50.0, 30.0))),
                                     dict(boxes=((4.0, 6.0, 20.0, 14.0),), points=((50.0, 30.0),))])
def test_visual_prompt_one_fixed_id_per_prompt(tiny, prompts):
    session = _session(tiny, Command("visual_prompt", **prompts))
    for i in range(2):
        result = session.process(frame(i))
        _check_instances(result)
        assert sorted(inst.id for inst in result.instances) == [1, 2]
        assert {inst.label for inst in result.instances} == {"object 1", "object 2"}


def test_region_tokens_come_from_the_first_frame_and_are_reused(tiny):
    command = Command("visual_prompt", boxes=((4.0, 6.0, 20.0, 14.0),), points=((50.0, 30.0),))
    session = _session(tiny, command)
    assert session.state.region_tokens is None
    session.process(frame(0))
    tokens = session.state.region_tokens.clone()
    assert tokens.shape == (1, 2, tiny[0].config.llm_width)
    session.process(frame(1))
    assert torch.equal(session.state.region_tokens, tokens)
    # frame 1's own region tokens would differ: the prompt is pinned to the frame it was drawn on
    fresh = _session(tiny, command)
    fresh.process(frame(1))
    assert not torch.allclose(fresh.state.region_tokens, tokens)
    # reset keeps the command but takes the region tokens again from the next frame
    session.reset()
    session.process(frame(1))
    assert torch.equal(session.state.region_tokens, fresh.state.region_tokens)


def _signature(result: FrameResult):
    return [(inst.id, round(inst.score, 7), inst.mask.tobytes()) for inst in result.instances]


def test_state_is_carried_and_reset_makes_frames_independent(tiny):
    command = Command("referring", "the red circle")
    a, b = _session(tiny, command), _session(tiny, command)
    a.process(frame(10))
    b.process(frame(11))
    assert a.state.latents is not None and not torch.equal(a.state.latents, b.state.latents)
    c_after_a, c_after_b = a.process(frame(12)), b.process(frame(12))
    assert c_after_a.instances[0].score != c_after_b.instances[0].score  # C depends on what came before

    fresh = _session(tiny, command).process(frame(12))
    a.reset()
    assert a.state == TemporalState() and a.command == command
    assert _signature(a.process(frame(12))) == _signature(fresh)


def test_set_command_clears_state_and_rejects_bad_commands(tiny):
    session = _session(tiny, Command("open_vocabulary", categories=("star",)))
    session.process(frame(0))
    assert session.state.frame_index == 1 and session.state.latents is not None
    session.set_command(Command("referring", "blue star"))
    assert session.state == TemporalState()
    with pytest.raises(CommandError):
        session.set_command(Command("referring", "   "))
    assert session.command.text == "blue star"  # a rejected command changes nothing


def test_no_command_no_instances(tiny):
    model, tokenizer = tiny
    assert SegmentationSession(model, tokenizer).process(frame(0)).instances == []


def test_global_prompt_aggregation_pools_over_frames(tiny):
    command = Command("referring", "the red circle")
    # the language side on every frame: aggregation pools each language pass's prompt
    pooled = _session(tiny, command, global_prompt_aggregation=True, llm_every_n_frames=1)
    plain = _session(tiny, command, llm_every_n_frames=1)
    first_pooled, first_plain = pooled.process(frame(0)), plain.process(frame(0))
    assert _signature(first_pooled) == _signature(first_plain)  # one frame: nothing to pool yet
    assert pooled.state.frame_index == 1
    second_pooled, second_plain = pooled.process(frame(1)), plain.process(frame(1))
    assert pooled.state.frame_index == 2 and pooled.state.prompt_sum.shape[:2] == (1, 1)
    assert second_pooled.instances[0].score != second_plain.instances[0].score


def test_bfloat16_session_runs(tiny, tmp_path):
    model, tokenizer = tiny
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    from hyperseg_ros.model import load_model

    half, half_tokenizer = load_model(str(tmp_path), dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    session = SegmentationSession(half, half_tokenizer, score_threshold=0.0)
    session.set_command(Command("visual_prompt", boxes=((4.0, 6.0, 20.0, 14.0),)))
    _check_instances(session.process(frame(0)))
    assert session.state.latents.dtype == torch.bfloat16


def test_default_model_loads_or_says_it_is_missing():
    from hyperseg_ros.model import load_model
    from hyperseg_ros.model.hyperseg import HyperSeg

    try:
        model, tokenizer = load_model("")
    except FileNotFoundError as error:
        assert "embedded default model is missing" in str(error)
    else:
        assert isinstance(model, HyperSeg) and not model.training and tokenizer.convert_tokens_to_ids("[SEG]") >= 0


def test_frames_of_several_streams_batched_get_the_answers_they_get_alone(tiny):
    from hyperseg_ros.model.session import encode_images

    commands = [Command("referring", "the red circle"), Command("open_vocabulary", categories=("circle", "square")),
                Command("visual_prompt", boxes=((4.0, 4.0, 20.0, 16.0),))]
    sizes = [(48, 64), (60, 40), (48, 64)]  # other sizes: each is padded to the model's square
    alone, batched = ([_session(tiny, c) for c in commands] for _ in range(2))
    for t in range(6):  # language passes on frames 0 and 4, the cached prompts between
        images = [frame(10 * t + k, h, w) for k, (h, w) in enumerate(sizes)]
        encoded = encode_images(tiny[0], images)
        for k, image in enumerate(images):
            a, b = alone[k].process(image), batched[k].process(image, encoded[k])
            assert a.language_pass == b.language_pass
            assert set(b.timings_ms) == set(a.timings_ms) | {"pixel_decoder"}
            assert [(i.id, i.label) for i in a.instances] == [(i.id, i.label) for i in b.instances]
            assert a.instances, "nothing answered: the comparison would be empty"
            for x, y in zip(a.instances, b.instances):
                assert abs(x.score - y.score) < 1e-4 and (x.mask == y.mask).mean() > 0.995
