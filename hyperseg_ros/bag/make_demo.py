"""`hyperseg_bag make-demo`: a camera bag from the procedural world, with an operator's commands.

The stream is clips of `hyperseg_ros.world.video` (moving shapes) at `fps`; four commands are
given at quarters of it, each written just before the frame it is about and phrased about what
that frame shows: a referring sentence on `command` (std_msgs/String, as speech-to-text sends it),
then a reasoning sentence and an open-vocabulary list, then a box around one object
(hyperseg_ros/SegmentationCommand on `segmentation_command`, stamped with the frame it refers
to). Beside each frame, `ground_truth` (hyperseg_ros/Segmentation, the frame's header) holds the
right answer to the command in force: its target objects' masks, with the world's object
identity as id (none on frames where the target has left the picture). The same seed gives the
same bag, byte for byte.

With a voice (`speak="en-us"`, espeak-ng), the referring sentence is also spoken on `audio`
(hyperseg_ros/AudioChunk, 16 kHz S16LE, 100 ms chunks) and ends SPEECH_TAIL_S before the first
frame: played with the `speech_command` node instead of `command`, it is the spoken command.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from geometry_msgs.msg import Point
from sensor_msgs.msg import RegionOfInterest
from std_msgs.msg import Header, String

from hyperseg_ros import image_codec, mask_rle
from hyperseg_ros.bag.storage import BagWriter
from hyperseg_ros.msg import AudioChunk, SegmentationCommand, SegmentedInstance
from hyperseg_ros.msg import Segmentation as SegmentationMsg
from hyperseg_ros.world.commands import WorldCommand, sample_command
from hyperseg_ros.world.scene import Scene
from hyperseg_ros.world.video import MAX_FRAMES, MIN_FRAMES, draw_clip

RAW_ENCODINGS = image_codec.WRITE_ENCODINGS
COMPRESSED_FORMATS = ("jpeg", "png")
START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z: fixed, so the bag does not depend on the clock
COMMAND_LEAD_NS = 1_000_000  # a command is recorded 1 ms before the frame it is about
GROUND_TRUTH_TOPIC = "/ground_truth"
AUDIO_TOPIC = "/audio"
AUDIO_CHUNK_S = 0.1
SPEECH_LEAD_S = 0.3  # silence before the voice
SPEECH_TAIL_S = 1.0  # silence after it: the speech node hears the end (200 ms) and answers before the first frame
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
    spoken: dict | None = None  # {text, voice, topic, start_s, seconds}: the referring sentence as audio


def draw_stream(rng: np.random.Generator, frames: int, width: int, height: int, num_objects: int = 4
                ) -> tuple[list[Scene], list[int]]:
    """`frames` Scenes of moving shapes: world clips (8..64 frames each) back to back
    -> (scenes, index of the clip of each scene; object identities hold within a clip)."""
    scenes, clip_of = [], []
    while len(scenes) < frames:
        want = min(MAX_FRAMES, max(MIN_FRAMES, frames - len(scenes)))
        clip = draw_clip(rng, width, height, frames=want, num_objects=num_objects).frames
        clip_of += [clip_of[-1] + 1 if clip_of else 0] * len(clip)
        scenes += clip
    return scenes[:frames], clip_of[:frames]


def ground_truth(header: Header, scene: Scene, world: WorldCommand | None, command_id: str,
                 same_clip: bool) -> SegmentationMsg:
    """The right answer to `world` on `scene` as a Segmentation: one instance per visible target
    object (id = its world identity; label = its category, or the command's text)."""
    cmd = world.command if world is not None else None
    msg = SegmentationMsg(header=header, command_id=command_id, task=cmd.task if cmd else "",
                          text=cmd.text if cmd else "", categories=list(cmd.categories) if cmd else [],
                          height=scene.height, width=scene.width)
    if world is None or not same_clip:
        return msg
    groups = world.category_targets if cmd.task == "open_vocabulary" else (world.targets,)
    index = {o.identity: i for i, o in enumerate(scene.objects)}
    for class_id, group in enumerate(groups):
        for identity in group:
            if identity not in index or not scene.masks[index[identity]].any():
                continue
            mask = scene.masks[index[identity]]
            x, y, w, h = mask_rle.bbox(mask)
            label = cmd.categories[class_id] if cmd.task == "open_vocabulary" else (cmd.text or cmd.task)
            inst = SegmentedInstance(id=int(identity), label=label,
                                     class_id=class_id if cmd.task == "open_vocabulary" else -1, score=1.0,
                                     mask_rle=mask_rle.encode(mask).tolist())
            inst.bbox = RegionOfInterest(x_offset=x, y_offset=y, width=w, height=h)
            msg.instances.append(inst)
    return msg


def make_demo(output, storage: str = "mcap", seconds: float = 4.0, fps: float = 15.0,
              size: tuple[int, int] = (640, 480), encodings=("rgb8",), image_topic: str = "/camera/image_raw",
              command_topic: str = "/command", segmentation_command_topic: str = "/segmentation_command",
              frame_id: str = "camera", seed: int = 5, num_objects: int = 4, speak: str | None = None,
              audio_topic: str = AUDIO_TOPIC) -> DemoInfo:
    """Write the demo bag at `output` (a new directory); returns what was written.

    speak: an espeak-ng voice that also says the first (referring) command on `audio_topic`.

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
    scenes, clip_of = draw_stream(rng, frames, width, height, num_objects)
    stamps = [START_NS + int(round(t * 1e9 / fps)) for t in range(frames)]
    at_frame = {min(frames - 1, int(round(frac * frames))): (task, how) for frac, task, how in SCRIPT}
    info = DemoInfo(str(output), storage, frames, fps, width, height, image_topic, encodings)
    world, command_id, command_clip = None, "", -1
    with BagWriter(output, storage) as writer:
        for t, scene in enumerate(scenes):
            header = Header(frame_id=frame_id)
            header.stamp.sec, header.stamp.nanosec = divmod(stamps[t], 10**9)
            if t in at_frame:
                task, how = at_frame[t]
                for _ in range(16):  # a demo command names something on screen (a list may also name absent things)
                    world = sample_command(rng, scene, task, no_match_rate=0.0, static=True)
                    if world.targets:
                        break
                cmd = world.command
                topic = command_topic if how == "string" else segmentation_command_topic
                msg = (String(data=cmd.text) if how == "string"
                       else _structured(cmd, header, f"demo-{len(info.commands) + 1}", size))
                writer.write(topic, stamps[t] - COMMAND_LEAD_NS, msg)
                if speak and how == "string" and info.spoken is None:
                    info.spoken = _write_speech(writer, audio_topic, cmd.text, speak, stamps[t] - COMMAND_LEAD_NS)
                command_id, command_clip = getattr(msg, "id", ""), clip_of[t]
                info.commands.append({"time_s": (stamps[t] - START_NS) / 1e9, "frame": t, "topic": topic,
                                      "task": cmd.task, "id": getattr(msg, "id", ""), "text": cmd.text,
                                      "categories": list(cmd.categories), "boxes": [list(b) for b in cmd.boxes],
                                      "targets": list(world.targets)})
            encoding = encodings[t % len(encodings)]
            image = (image_codec.rgb_to_compressed(scene.image, header, encoding) if encoding in COMPRESSED_FORMATS
                     else image_codec.rgb_to_image(scene.image, header, encoding))
            writer.write(image_topic, stamps[t], image)
            writer.write(GROUND_TRUTH_TOPIC, stamps[t],
                         ground_truth(header, scene, world, command_id, clip_of[t] == command_clip))
    return info


def _write_speech(writer: BagWriter, topic: str, text: str, voice: str, end_ns: int) -> dict:
    """`text` spoken by espeak-ng `voice` as AudioChunks on `topic`, the last one ending at `end_ns`."""
    from hyperseg_ros.speech.audio import resample
    from hyperseg_ros.speech.grammar import spoken_form
    from hyperseg_ros.speech.pipeline import wav_chunks
    from hyperseg_ros.speech.spoken import speak
    from hyperseg_ros.speech.vad import RATE

    said = spoken_form(text)
    voice_samples, rate = speak(said, voice)
    silence = [np.zeros(int(RATE * s), np.float32) for s in (SPEECH_LEAD_S, SPEECH_TAIL_S)]
    samples = np.concatenate([silence[0], resample(voice_samples, rate, RATE), silence[1]])
    start_ns = end_ns - int(round(len(samples) / RATE * 1e9))
    for i, data in enumerate(wav_chunks(samples, RATE, AUDIO_CHUNK_S)):
        at = start_ns + int(round(i * AUDIO_CHUNK_S * 1e9))
        header = Header(frame_id="microphone")
        header.stamp.sec, header.stamp.nanosec = divmod(at, 10**9)
        writer.write(topic, at, AudioChunk(header=header, sample_rate=RATE, channels=1, encoding="S16LE",
                                                 data=data))
    return {"text": said, "voice": voice, "topic": topic, "start_s": (start_ns - START_NS) / 1e9,
            "seconds": len(samples) / RATE}


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
