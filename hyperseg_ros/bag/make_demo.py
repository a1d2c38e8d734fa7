"""`hyperseg_bag make-demo`: a camera bag from the procedural world, with an operator's commands.

The stream is clips of `hyperseg_ros.world.video` (moving shapes) at `fps`; four commands are
given at quarters of it, each written just before the frame it is about and phrased about what
that frame shows: a referring sentence on `command` (std_msgs/String, as speech-to-text sends it),
then a reasoning sentence and an open-vocabulary list, then a box around one object
(hyperseg_ros/SegmentationCommand on `segmentation_command`, stamped with the frame it refers
to). The same seed gives the same bag, byte for byte.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from geometry_msgs.msg import Point
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header, String

from hyperseg_ros import image_codec
from hyperseg_ros.bag.storage import BagWriter
from hyperseg_ros.msg import SegmentationCommand
from hyperseg_ros.world.commands import sample_command
from hyperseg_ros.world.video import MAX_FRAMES, MIN_FRAMES, draw_clip

RAW_ENCODINGS = tuple(image_codec.ENCODINGS)
COMPRESSED_FORMATS = ("jpeg", "png")
START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z: fixed, so the bag does not depend on the clock
COMMAND_LEAD_NS = 1_000_000  # a command is recorded 1 ms before the frame it is about
# (fraction of the stream, task, where it is sent)
SCRIPT = (
    (0.0, "referring", "string"),
    (0.25, "reasoning", "structured"),
    (0.5, "open_vocabulary", "structured"),
    (0.75, "visual_prompt_box", "structured"),
)


@dataclass
class DemoInfo:
    """What `make_demo` wrote; commands: time_s, topic, task, id, text / categories / boxes, targets."""

    output: str
    storage: str
    frames: int
    fps: float
    width: int
    height: int
    image_topic: str
    encodings: list[str]
    commands: list[dict] = field(default_factory=list)


def draw_stream(rng: np.random.Generator, frames: int, width: int, height: int, num_objects: int = 4):
    """`frames` Scenes of moving shapes: world clips (8..64 frames each) back to back."""
    scenes = []
    while len(scenes) < frames:
        want = min(MAX_FRAMES, max(MIN_FRAMES, frames - len(scenes)))
        scenes += draw_clip(rng, width, height, frames=want, num_objects=num_objects).frames
    return scenes[:frames]


def make_demo(output, storage: str = "mcap", seconds: float = 4.0, fps: float = 15.0,
              size: tuple[int, int] = (640, 480), encodings=("rgb8",), image_topic: str = "/camera/image_raw",
              command_topic: str = "/command", segmentation_command_topic: str = "/segmentation_command",
              frame_id: str = "camera", seed: int = 5, num_objects: int = 4) -> DemoInfo:
    """Write the demo bag at `output` (a new directory); returns what was written.

    size: (width, height) pixels. encodings: image encodings cycled frame by frame; "jpeg" / "png"
    write sensor_msgs/CompressedImage on `<image_topic>/compressed` instead (not mixable with raw).
    """
    encodings = [e.strip().lower() for e in encodings]
    unknown = [e for e in encodings if e not in RAW_ENCODINGS + COMPRESSED_FORMATS]
    compressed = [e in COMPRESSED_FORMATS for e in encodings]
    if unknown or not encodings:
        raise ValueError(f"unknown encodings {unknown}; use {', '.join(RAW_ENCODINGS + COMPRESSED_FORMATS)}")
    if any(compressed) and not all(compressed):
        raise ValueError("raw and compressed encodings cannot be mixed in one stream")
    if all(compressed):
        image_topic = image_topic.rstrip("/") + "/compressed"
    width, height = size
    frames = max(1, int(round(seconds * fps)))
    rng = np.random.default_rng(seed)
    scenes = draw_stream(rng, frames, width, height, num_objects)
    stamps = [START_NS + int(round(t * 1e9 / fps)) for t in range(frames)]
    at_frame = {min(frames - 1, int(round(frac * frames))): (task, how) for frac, task, how in SCRIPT}
    info = DemoInfo(str(output), storage, frames, fps, width, height, image_topic, encodings)
    with BagWriter(output, storage) as writer:
        for t, scene in enumerate(scenes):
            header = Header(frame_id=frame_id)
            header.stamp.sec, header.stamp.nanosec = divmod(stamps[t], 10**9)
            if t in at_frame:
                task, how = at_frame[t]
                world = sample_command(rng, scene, task, no_match_rate=0.0, static=True)
                cmd = world.command
                topic = command_topic if how == "string" else segmentation_command_topic
                msg = (String(data=cmd.text) if how == "string"
                       else _structured(cmd, header, f"demo-{len(info.commands) + 1}", size))
                writer.write(topic, stamps[t] - COMMAND_LEAD_NS, msg)
                info.commands.append({"time_s": (stamps[t] - START_NS) / 1e9, "frame": t, "topic": topic,
                                      "task": cmd.task, "id": getattr(msg, "id", ""), "text": cmd.text,
                                      "categories": list(cmd.categories), "boxes": [list(b) for b in cmd.boxes],
                                      "targets": list(world.targets)})
            encoding = encodings[t % len(encodings)]
            image = (image_codec.rgb_to_compressed(scene.image, header, encoding) if encoding in COMPRESSED_FORMATS
                     else image_codec.rgb_to_image(scene.image, header, encoding))
            writer.write(image_topic, stamps[t], image)
    return info


def _structured(cmd, header: Header, command_id: str, size: tuple[int, int]) -> SegmentationCommand:
    """Command -> SegmentationCommand stamped with the frame its boxes/points refer to.

    Boxes become whole pixels covering the float box, clipped to the (width, height) image.
    """
    msg = SegmentationCommand(header=header, id=command_id, task=cmd.task, text=cmd.text,
                              categories=list(cmd.categories))
    msg.boxes = []
    for x, y, w, h in cmd.boxes:
        x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
        x1, y1 = min(size[0], math.ceil(x + w)), min(size[1], math.ceil(y + h))
        msg.boxes.append(RegionOfInterest(x_offset=x0, y_offset=y0, width=x1 - x0, height=y1 - y0))
    msg.points = [Point(x=float(x), y=float(y)) for x, y in cmd.points]
    return msg
