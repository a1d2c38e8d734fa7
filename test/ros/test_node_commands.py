"""The node answers commands over real Fast DDS with exactly the model's masks.

Frames go out one at a time (each waits for its answer) over a reliable image subscription, so
the node processes every frame in order and a `SegmentationSession` in this process, run on the
same frames with the same model directory, must give the same ids, scores and masks.
"""
import numpy as np
import pytest
import torch
from geometry_msgs.msg import Point
from hyperseg_ros.msg import SegmentationCommand
from live_node import ANSWER_TIMEOUT_S, header, image, scene
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import String

from hyperseg_ros import mask_rle
from hyperseg_ros.command import Command
from hyperseg_ros.model import load_model
from hyperseg_ros.model.session import SegmentationSession

FRAMES_PER_COMMAND = 3


def _check_frame(answer, i):
    """Header, size, boxes and RLE of the answer to frame i; returns [(id, label, class_id, score, mask)]."""
    assert answer.header == header(i)
    assert (answer.height, answer.width) == scene(i).shape[:2]
    out = []
    for inst in answer.instances:
        mask = mask_rle.decode(inst.mask_rle, answer.height, answer.width)
        b = inst.bbox
        assert (b.x_offset, b.y_offset, b.width, b.height) == mask_rle.bbox(mask)  # tight box of the mask
        out.append((inst.id, inst.label, inst.class_id, inst.score, mask))
    assert [s for *_, s, _ in out] == sorted((s for *_, s, _ in out), reverse=True)  # best first
    return out


def _run_command(client, node, send, first_index):
    """Send a command, then frames one by one until FRAMES_PER_COMMAND answers carry its id.
    Returns (command_id, [(frame index, answer)])."""
    before = client.segmentations[-1].command_id
    send()
    answered, i = [], first_index
    while len(answered) < FRAMES_PER_COMMAND:
        client.image_pub.publish(image(i))
        answer = client.answer_to(header(i).stamp, node)
        if answer.command_id != before or answered:  # commands travel on their own topic
            answered.append((i, answer))
        i += 1
        assert i - first_index < 20, "the command never took effect"
    ids = {a.command_id for _, a in answered}
    assert len(ids) == 1
    return ids.pop(), answered


def _assert_same(answers, session):
    """Each answer equals the in-process session's result on the same frame."""
    for i, answer in answers:
        got = _check_frame(answer, i)
        ref = session.process(scene(i)).instances
        assert [(g[0], g[1], g[2]) for g in got] == [(r.id, r.label, r.class_id) for r in ref]
        for g, r in zip(got, ref):
            assert g[3] == pytest.approx(r.score, abs=1e-6)
            np.testing.assert_array_equal(g[4], r.mask)


def test_commands_are_answered_with_the_models_masks(start_node, reliable_client, model_dir):
    node = start_node(image_reliability="reliable", score_threshold=0.0, diagnostics_period_s=0.5)
    client = reliable_client
    client.wait_for_node(node)
    torch.set_num_threads(1)  # same arithmetic as the node (num_threads 1)
    session = SegmentationSession(*load_model(str(model_dir)), score_threshold=0.0)

    # before any command: the default open-vocabulary task, command_id ""
    client.image_pub.publish(image(0))
    first = client.answer_to(header(0).stamp, node)
    default_categories = session.model.config.default_categories  # the model directory's vocabulary
    assert default_categories, "the test model states no default vocabulary"
    assert (first.command_id, first.task, list(first.categories)) == ("", "open_vocabulary", default_categories)
    _check_frame(first, 0)

    # plain text (std_msgs/String): a referring command with an id assigned by the node
    cid, answers = _run_command(client, node, lambda: client.text_pub.publish(String(data="the red circle")), 1)
    assert cid and all((a.task, a.text) == ("referring", "the red circle") for _, a in answers)
    assert any(a.instances for _, a in answers)
    session.set_command(Command(text="the red circle"))
    _assert_same(answers, session)
    ids = [tuple(inst.id for inst in a.instances) for _, a in answers]
    assert len(set(ids)) == 1, f"the target's id changed: {ids}"  # stable while found

    # structured command: open vocabulary, the caller's id echoed
    msg = SegmentationCommand(id="ov-1", task="open_vocabulary", categories=["circle", "square"])
    cid, answers = _run_command(client, node, lambda: client.command_pub.publish(msg), answers[-1][0] + 1)
    assert cid == "ov-1" and all(list(a.categories) == ["circle", "square"] for _, a in answers)
    session.set_command(Command(task="open_vocabulary", categories=("circle", "square")))
    _assert_same(answers, session)

    # ~/reset: temporal state and track ids cleared, the command stays
    response = client.reset(node)
    assert response.success
    i = answers[-1][0] + 1
    client.image_pub.publish(image(i))
    after = client.answer_to(header(i).stamp, node)
    assert after.command_id == "ov-1"
    session.reset()
    _assert_same([(i, after)], session)

    # visual prompt: a box around the blue square, applied to the first frame after the command
    box = RegionOfInterest(x_offset=100, y_offset=15, width=30, height=30)
    msg = SegmentationCommand(id="vp-1", task="visual_prompt", boxes=[box], points=[Point(x=48.0, y=60.0)])
    cid, answers = _run_command(client, node, lambda: client.command_pub.publish(msg), i + 1)
    assert cid == "vp-1"
    session.set_command(Command(task="visual_prompt", boxes=((100, 15, 30, 30),), points=((48.0, 60.0),)))
    _assert_same(answers, session)

    # /diagnostics: every frame accounted for
    sent = answers[-1][0] + 1

    def settled():
        d = client.latest_diagnostics()
        return d if d and d["frames_in_flight"] == "0" and int(d["frames_received"]) == sent else None

    d = client.spin_until(settled, ANSWER_TIMEOUT_S, "diagnostics with every frame accounted for", node)
    processed, dropped, rejected = (int(d[k]) for k in ("frames_processed", "frames_dropped", "frames_rejected"))
    assert int(d["frames_received"]) == processed + dropped + rejected
    assert processed == len(client.segmentations) and (d["commands_received"], d["commands_rejected"]) == ("3", "0")
    assert d["model"] == str(model_dir) and d["device"] == "cpu"
