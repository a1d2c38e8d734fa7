"""messages: Segmentation built from a real StreamOutput, and commands from ROS messages."""
import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from hyperseg_ros.msg import SegmentationCommand
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header

from hyperseg_ros import mask_rle
from hyperseg_ros.command import Command
from hyperseg_ros.messages import command_from_msg, command_from_string, segmentation_message
from hyperseg_ros.model import load_model
from hyperseg_ros.model.session import FrameResult, Instance, SegmentationSession
from hyperseg_ros.stream import StreamOutput, StreamParams, StreamProcessor

HEADER = Header(stamp=Time(sec=12, nanosec=345), frame_id="camera_optical")


def _instance(i, score, mask):
    return Instance(id=i, label=f"obj{i}", class_id=i - 1, score=score, mask=mask, box=mask_rle.bbox(mask))


def test_instances_best_first_with_tight_boxes_and_exact_rle():
    masks = [np.zeros((30, 40), bool) for _ in range(3)]
    masks[0][5:10, 5:30] = True
    masks[1][12:28, 2:9] = True
    masks[1][15:20, 4:6] = False  # a hole
    masks[2][0:3, 37:40] = True
    result = FrameResult([_instance(1, 0.5, masks[0]), _instance(2, 0.9, masks[1]), _instance(3, 0.7, masks[2])], {})
    cmd = Command(task="open_vocabulary", categories=("a", "b", "c"), id="c1")
    msg = segmentation_message(HEADER, StreamOutput(result, cmd, None), 30, 40, latency_ms=12.5)
    assert msg.header == HEADER and (msg.height, msg.width) == (30, 40)
    assert (msg.command_id, msg.task, msg.text, list(msg.categories)) == ("c1", "open_vocabulary", "", ["a", "b", "c"])
    assert [i.id for i in msg.instances] == [2, 3, 1] and msg.latency_ms == pytest.approx(12.5)
    for inst in msg.instances:
        mask = masks[inst.id - 1]
        np.testing.assert_array_equal(mask_rle.decode(inst.mask_rle, 30, 40), mask)
        b = inst.bbox
        assert (b.x_offset, b.y_offset, b.width, b.height) == mask_rle.bbox(mask)
        assert inst.class_id == inst.id - 1 and inst.label == f"obj{inst.id}"


def test_message_from_the_tiny_model_on_a_referring_command(model_dir):
    torch.set_num_threads(1)
    proc = StreamProcessor(SegmentationSession(*load_model(str(model_dir)), score_threshold=0.0), StreamParams())
    cmd = proc.apply_command(Command(text="the red circle", id="voice-1"))
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = proc.process(rgb, 0, "camera_optical")
    msg = segmentation_message(HEADER, out, 48, 64, latency_ms=1.0)
    assert (msg.command_id, msg.task, msg.text, list(msg.categories)) == ("voice-1", "referring", cmd.text, [])
    assert len(msg.instances) == len(out.result.instances) == 1  # score_threshold 0: the target is there
    for inst, ref in zip(msg.instances, out.result.instances):
        assert inst.class_id == -1 and inst.label == "the red circle"
        np.testing.assert_array_equal(mask_rle.decode(inst.mask_rle, 48, 64), ref.mask)


def test_command_from_string_uses_the_text_task():
    assert command_from_string("the red circle") == Command(task="referring", text="the red circle")
    assert command_from_string("shape like grass", "reasoning").task == "reasoning"
    assert command_from_string("circle, red square", "open_vocabulary").categories == ("circle", "red square")


def test_command_from_msg():
    msg = SegmentationCommand(header=Header(stamp=Time(sec=2, nanosec=5), frame_id="cam"), id="x", task="visual_prompt",
                              boxes=[RegionOfInterest(x_offset=1, y_offset=2, width=3, height=4)],
                              points=[Point(x=5.5, y=6.0, z=9.0)])
    cmd = command_from_msg(msg)
    assert cmd == Command(task="visual_prompt", boxes=((1.0, 2.0, 3.0, 4.0),), points=((5.5, 6.0),), id="x",
                          stamp_ns=2_000_000_005)
    assert command_from_msg(SegmentationCommand(text="hi")).task == "referring"
    assert command_from_msg(SegmentationCommand(text="hi")).stamp_ns is None
