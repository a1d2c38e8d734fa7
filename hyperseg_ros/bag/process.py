"""`hyperseg_bag process`: the node's stream logic over every image of a bag, offline.

Each image goes through `StreamProcessor.process` in bag order, none dropped; commands found in the
bag (std_msgs/String and hyperseg_ros/SegmentationCommand) are applied where they sit in that order,
so a command answers the first image recorded after it, as on the live node. The output bag holds
the input topics unchanged plus `segmentation` (header = image header) and `segmentation/overlay`.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm import tqdm

from hyperseg_ros import image_codec
from hyperseg_ros.bag.params import read_ros_parameters
from hyperseg_ros.bag.storage import BagWriter, Record, connections, message_counts, read, stamp_ns
from hyperseg_ros.bag.storage import topics as bag_topics
from hyperseg_ros.command import CommandError
from hyperseg_ros.messages import command_from_msg, command_from_string, segmentation_message
from hyperseg_ros.overlay import render_overlay
from hyperseg_ros.stream import StreamParams, StreamProcessor

log = logging.getLogger("hyperseg_bag.process")
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"
SEGMENTATION_COMMAND = "hyperseg_ros/msg/SegmentationCommand"
SEGMENTATION_TOPIC = "/segmentation"
OVERLAY_TOPIC = "/segmentation/overlay"


@dataclass
class ProcessSummary:
    """What `process` did. latency: per-frame decode + inference + message time, ms."""

    output: str
    image_topic: str
    images: int = 0
    segmentations: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # images not decodable, by reason
    unanswered: int = 0  # images before any command when no default categories are set
    errors: int = 0  # images the model failed on (logged; the node drops them the same way)
    commands: list[dict] = field(default_factory=list)  # applied: id, task, text/categories, stamp
    rejected_commands: int = 0
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    latency_ms_p99: float | None = None
    seconds: float = 0.0


def node_parameters(params_file=None) -> dict:
    """The node's parameters: its declared defaults overridden by a `ros__parameters` yaml file."""
    from hyperseg_ros.perception_node import PARAMETERS

    params = {name: default for name, (default, _) in PARAMETERS.items()}
    params.update(read_ros_parameters(params_file))
    return params


def stream_params(params: dict) -> StreamParams:
    """StreamParams from the node's parameters, as the node builds them."""
    return StreamParams(temporal_reset_gap_s=float(params["temporal_reset_gap_s"]),
                        max_frame_age_ms=float(params["max_frame_age_ms"]),
                        categories=tuple(c for c in params["categories"] if c.strip()))


def build_session(params: dict):
    """SegmentationSession from the node's parameters (model_path "" = embedded model, device, dtype)."""
    import torch

    from hyperseg_ros.model import load_model
    from hyperseg_ros.model.session import SegmentationSession
    from hyperseg_ros.perception_node import resolve_device

    if int(params["num_threads"]) > 0:
        torch.set_num_threads(int(params["num_threads"]))
    device, dtype = resolve_device(str(params["device"]), str(params["dtype"]))
    model, tokenizer = load_model(str(params["model_path"]), device=device, dtype=dtype)
    return SegmentationSession(model, tokenizer, score_threshold=float(params["score_threshold"]),
                               max_instances=int(params["max_instances"]),
                               global_prompt_aggregation=bool(params["global_prompt_aggregation"]),
                               llm_every_n_frames=int(params["llm_every_n_frames"]),
                               llm_rerun_score_threshold=float(params["llm_rerun_score_threshold"]))


def image_topics(topics: dict[str, str]) -> list[str]:
    """Topics of a bag that carry Image or CompressedImage, outputs of the node excluded."""
    return [t for t, ty in topics.items() if ty in (IMAGE, COMPRESSED) and not _same(t, OVERLAY_TOPIC)]


def pick_image_topic(topics: dict[str, str], wanted: str | None, path) -> str:
    """The bag's spelling of `wanted` (leading "/" optional), or its only image topic when None."""
    if wanted is None:
        found = image_topics(topics)
        if len(found) != 1:
            raise ValueError(f"{path}: pick an image topic with --image-topic among {found}")
        return found[0]
    for topic in topics:
        if _same(topic, wanted):
            return topic
    raise ValueError(f"{path} has no topic {wanted!r}; it has {sorted(topics)}")


def process(input_bag, output_bag, image_topic: str | None = None, command_topic: str = "command",
            segmentation_command_topic: str = "segmentation_command", params_file=None, storage: str = "mcap",
            overlay: bool = True, progress: bool = True, session=None) -> ProcessSummary:
    """Process every image of `input_bag` and write `output_bag` (see the module docstring).

    params_file: the node's ros__parameters yaml (node defaults otherwise). storage: "mcap" or
    "sqlite3" for the output. session: a ready SegmentationSession; built from the parameters when None.
    """
    started = time.perf_counter()
    params = node_parameters(params_file)
    topics = bag_topics(input_bag)
    image_topic = pick_image_topic(topics, image_topic, input_bag)
    command_topics = {t for t, ty in topics.items()
                      if (_same(t, command_topic) and ty == STRING)
                      or (_same(t, segmentation_command_topic) and ty == SEGMENTATION_COMMAND)}
    processor = StreamProcessor(session if session is not None else build_session(params), stream_params(params))
    summary = ProcessSummary(output=str(output_bag), image_topic=image_topic)
    skipped: Counter[str] = Counter()
    latencies = []
    with BagWriter(output_bag, storage) as writer:
        copied = set()
        for conn in connections(input_bag):
            if _same(conn.topic, SEGMENTATION_TOPIC) or _same(conn.topic, OVERLAY_TOPIC):
                log.warning("input already has %s: not copied (it is rewritten)", conn.topic)
                continue
            writer.add_topic(conn.topic, conn.msgtype, like=conn)
            copied.add(conn.topic)
        writer.add_topic(SEGMENTATION_TOPIC, "hyperseg_ros/msg/Segmentation")
        if overlay:
            writer.add_topic(OVERLAY_TOPIC, IMAGE)
        bar = tqdm(total=message_counts(input_bag).get(image_topic, 0), unit="img", disable=not progress,
                   desc="hyperseg_bag process")
        for record in read(input_bag):
            if record.topic in copied:
                writer.write(record.topic, record.timestamp, record.data)
            if record.topic in command_topics:
                _apply(processor, record, str(params["text_task"]), summary)
            if record.topic != image_topic:
                continue
            summary.images += 1
            bar.update(1)
            msg = record.message()
            t0 = time.perf_counter()
            try:
                rgb = image_codec.compressed_to_rgb(msg) if topics[image_topic] == COMPRESSED \
                    else image_codec.image_to_rgb(msg)
                out = processor.process(rgb, stamp_ns(msg.header), msg.header.frame_id)
            except image_codec.ImageError as err:
                skipped[err.reason] += 1
                log.debug("image %d skipped: %s", summary.images, err)
                continue
            except Exception as err:  # noqa: BLE001 - as on the node: one bad frame does not end the stream
                summary.errors += 1
                log.error("image %d: %s: %s", summary.images, type(err).__name__, err)
                continue
            if out is None:
                summary.unanswered += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1e3)
            writer.write(SEGMENTATION_TOPIC, record.timestamp,
                         segmentation_message(msg.header, out, rgb.shape[0], rgb.shape[1], latencies[-1]))
            summary.segmentations += 1
            if overlay:
                writer.write(OVERLAY_TOPIC, record.timestamp,
                             image_codec.rgb_to_image(render_overlay(rgb, out.result.instances), msg.header))
        bar.close()
    summary.skipped = dict(skipped)
    if skipped:
        log.warning("%d images skipped: %s", sum(skipped.values()), dict(skipped))
    if latencies:
        summary.latency_ms_p50, summary.latency_ms_p90, summary.latency_ms_p99 = (
            float(v) for v in np.percentile(latencies, [50, 90, 99]))
    summary.seconds = time.perf_counter() - started
    return summary


def _apply(processor: StreamProcessor, record: Record, text_task: str, summary: ProcessSummary) -> None:
    msg = record.message()
    cmd = command_from_string(msg.data, text_task) if record.msgtype == STRING else command_from_msg(msg)
    if not cmd.id:
        # The node draws a random id; offline it is derived from the bag so that runs are identical.
        cmd = replace(cmd, id=hashlib.sha1(f"{record.topic}:{record.timestamp}:".encode() + record.data)
                      .hexdigest()[:12])
    try:
        cmd = processor.apply_command(cmd)
    except CommandError as err:
        summary.rejected_commands += 1
        log.warning("command on %s rejected: %s", record.topic, err)
        return
    summary.commands.append({"id": cmd.id, "task": cmd.task, "text": cmd.text, "categories": list(cmd.categories),
                             "boxes": [list(b) for b in cmd.boxes], "points": [list(p) for p in cmd.points],
                             "bag_time_ns": record.timestamp})


def _same(a: str, b: str) -> bool:
    return a.lstrip("/") == b.lstrip("/")
