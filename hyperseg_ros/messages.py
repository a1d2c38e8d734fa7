"""Stream results -> hyperseg_ros/Segmentation, and ROS commands -> `Command`."""
from __future__ import annotations

import array

import numpy as np
from sensor_msgs.msg import RegionOfInterest

from hyperseg_ros import mask_rle
from hyperseg_ros.command import CATEGORY_TASKS, TEXT_TASKS, Command
from hyperseg_ros.msg import Segmentation, SegmentedInstance
from hyperseg_ros.stream import StreamOutput


def _uint32_array(values: np.ndarray) -> array.array:
    # array.array is what rclpy stores for uint32[]; building it from bytes skips a Python loop
    out = array.array("I")
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint32).tobytes())
    return out


def segmented_instance(inst, category_task: bool) -> SegmentedInstance:
    """One model `Instance` -> SegmentedInstance: COCO RLE mask; bbox = the instance's box, which
    postprocess already made tight around this mask (not recomputed per frame here)."""
    mask = np.asarray(inst.mask, dtype=bool)
    x, y, w, h = (int(v) for v in inst.box)
    msg = SegmentedInstance()
    msg.id = int(inst.id)
    msg.label = str(inst.label)
    msg.class_id = int(inst.class_id) if category_task else -1
    msg.score = float(inst.score)
    msg.bbox = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)
    msg.mask_rle = _uint32_array(mask_rle.encode(mask))
    return msg


def segmentation_message(header, output: StreamOutput, height: int, width: int, latency_ms: float) -> Segmentation:
    """Build the Segmentation for one processed frame.

    header: the input image's std_msgs/Header (copied unchanged); height, width: input image size
    in pixels (masks are at this size); latency_ms: receive-to-publish time. Instances best first.
    """
    cmd = output.command
    category_task = cmd.task in CATEGORY_TASKS
    msg = Segmentation()
    msg.header = header
    msg.command_id = cmd.id
    msg.task = cmd.task
    msg.text = cmd.text if cmd.task in TEXT_TASKS else ""
    msg.categories = list(cmd.categories) if category_task else []
    msg.height, msg.width = int(height), int(width)
    ranked = sorted(output.result.instances, key=lambda inst: -float(inst.score))
    msg.instances = [segmented_instance(inst, category_task) for inst in ranked]
    msg.latency_ms = float(latency_ms)
    return msg


def command_from_string(text: str, text_task: str = "referring") -> Command:
    """A plain-text command (std_msgs/String, e.g. speech-to-text) for the task `text_task`.

    For text_task open_vocabulary the text is a comma-separated category list. Not validated
    here: StreamProcessor.apply_command does that for every entry point.
    """
    if text_task == "open_vocabulary":
        return Command(task=text_task, categories=tuple(c.strip() for c in text.split(",")))
    return Command(task=text_task, text=text)


def command_from_msg(msg) -> Command:
    """A hyperseg_ros/SegmentationCommand -> Command (boxes as x, y, w, h; points as x, y pixels)."""
    stamp_ns = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
    return Command(
        task=msg.task or "referring",
        text=msg.text,
        categories=tuple(msg.categories),
        boxes=tuple((float(b.x_offset), float(b.y_offset), float(b.width), float(b.height)) for b in msg.boxes),
        points=tuple((float(p.x), float(p.y)) for p in msg.points),
        id=msg.id,
        stamp_ns=stamp_ns or None,
    )
