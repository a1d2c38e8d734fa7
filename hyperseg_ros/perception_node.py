"""The HyperSeg perception node: a thin rclpy shell over `stream.StreamProcessor`.

    python -m hyperseg_ros.perception_node --ros-args --params-file config/perception.yaml

Topics, QoS, parameters and services follow shared/design/interface.md. Callbacks only decode
headers, validate commands and hand frames to a `LatestFrameSlot`; one worker thread runs the
model, so subscriptions, the reset service and diagnostics stay responsive during inference.
"""
from __future__ import annotations

import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from hyperseg_ros.command import CommandError
from hyperseg_ros.diagnostics import diagnostic_array
from hyperseg_ros.fastdds import use_shm_profile
from hyperseg_ros.image_codec import (
    ImageError,
    check_compressed,
    check_image,
    compressed_to_rgb,
    image_to_rgb,
    rgb_to_image,
)
from hyperseg_ros.messages import command_from_msg, command_from_string, segmentation_message
from hyperseg_ros.msg import Segmentation, SegmentationCommand
from hyperseg_ros.overlay import render_overlay
from hyperseg_ros.qos import RELIABLE_10, image_qos
from hyperseg_ros.stream import (
    DROP_ERROR,
    DROP_NO_COMMAND,
    Frame,
    LatestFrameSlot,
    StreamParams,
    StreamProcessor,
    StreamStats,
)

NODE_NAME = "hyperseg_perception"
WORLD_CATEGORIES = ["circle", "square", "triangle", "star", "hexagon", "ring", "cross", "heart"]

# name -> (default, description). config/perception.yaml and the README document the same set.
PARAMETERS: dict[str, tuple[object, str]] = {
    "model_path": ("", "model directory (config.json + model.safetensors + tokenizer); empty = embedded default"),
    "device": ("auto", "auto | cpu | cuda | cuda:N (auto = cuda when available)"),
    "dtype": ("float32", "float32 | float16 | bfloat16 | auto (auto = bfloat16 on cuda, float32 on cpu); "
              "float16 is unsafe with HyperSeg-3B (Phi-2 attention overflows it)"),
    "categories": (WORLD_CATEGORIES, "default open-vocabulary task answered until a command arrives ([''] = none)"),
    "text_task": ("referring", "task of plain-text commands on `command`: referring | reasoning | open_vocabulary"),
    "score_threshold": (0.5, "instances scoring below this are not published, in [0, 1]"),
    "max_instances": (20, "at most this many instances per frame"),
    "global_prompt_aggregation": (False, "temporal adapter: pool the prompt over past frames (paper eq. 3)"),
    "llm_every_n_frames": (4, "run the language side (SigLIP, FVP, Phi) every N frames; 1 = every frame"),
    "llm_rerun_score_threshold": (0.5, "re-run the language side on a frame whose target score drops below this"),
    "max_frame_age_ms": (500.0, "frames that waited longer than this for inference are dropped (0 = never)"),
    "image_reliability": ("best_effort", "QoS reliability of the image subscription: best_effort | reliable"),
    "compressed_input": (False, "subscribe to image/compressed (jpeg, png) instead of image"),
    "publish_overlay": (True, "publish segmentation/overlay (rendered only while someone subscribes)"),
    "temporal_reset_gap_s": (1.0, "a forward stamp jump larger than this clears temporal state and track ids"),
    "num_threads": (0, "torch CPU threads (0 = torch default)"),
    "diagnostics_period_s": (1.0, "period of /diagnostics messages"),
}
PLAIN_TEXT_TASKS = ("referring", "reasoning", "open_vocabulary")
WARN_PERIOD_S = 2.0  # bad input warnings are throttled to one per this period and kind




def resolve_device(device: str, dtype: str):
    """(torch device string, torch dtype) for the `device` and `dtype` parameters."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"  # Phi-2 overflows float16
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {', '.join(dtypes)} or auto, not {dtype!r}")
    return device, dtypes[dtype]


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class PerceptionNode(Node):
    """Loads the model, then serves: image -> segmentation (+ overlay), commands, reset, diagnostics."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description, read_only=True))
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        if p["text_task"] not in PLAIN_TEXT_TASKS:
            raise ValueError(f"text_task must be one of {', '.join(PLAIN_TEXT_TASKS)}, not {p['text_task']!r}")
        self.params = p

        import torch

        from hyperseg_ros.model import load_model
        from hyperseg_ros.model.session import SegmentationSession

        if p["num_threads"] > 0:
            torch.set_num_threads(p["num_threads"])
        self.device, dtype = resolve_device(p["device"], p["dtype"])
        self.model_name = p["model_path"] or "embedded:hyperseg-world"
        started = time.monotonic()
        model, tokenizer = load_model(p["model_path"], device=self.device, dtype=dtype)
        session = SegmentationSession(model, tokenizer, score_threshold=p["score_threshold"],
                                      max_instances=p["max_instances"],
                                      global_prompt_aggregation=p["global_prompt_aggregation"],
                                      llm_every_n_frames=p["llm_every_n_frames"],
                                      llm_rerun_score_threshold=p["llm_rerun_score_threshold"])
        self.get_logger().info(f"model {self.model_name} on {self.device} ({dtype}) loaded in "
                               f"{time.monotonic() - started:.1f} s")

        self.stats = StreamStats()
        categories = tuple(c for c in p["categories"] if c.strip())
        self.processor = StreamProcessor(session, StreamParams(
            temporal_reset_gap_s=p["temporal_reset_gap_s"], max_frame_age_ms=p["max_frame_age_ms"],
            categories=categories))
        self.slot = LatestFrameSlot(self.stats, max_frame_age_ms=p["max_frame_age_ms"])

        # publishers and services first: a client that sees our subscriptions can use everything
        self.seg_pub = self.create_publisher(Segmentation, "segmentation", RELIABLE_10)
        self.overlay_pub = (self.create_publisher(Image, "segmentation/overlay", 1)
                            if p["publish_overlay"] else None)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_timer(p["diagnostics_period_s"], self._publish_diagnostics)

        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._inference_loop, name="hyperseg-inference", daemon=True)
        self._worker.start()

        qos = image_qos(p["image_reliability"])
        if p["compressed_input"]:
            self.create_subscription(CompressedImage, "image/compressed", self._on_image, qos)
        else:
            self.create_subscription(Image, "image", self._on_image, qos)
        self.create_subscription(String, "command", self._on_text_command, RELIABLE_10)
        self.create_subscription(SegmentationCommand, "segmentation_command", self._on_command, RELIABLE_10)
        self.get_logger().info(f"serving; default task: open_vocabulary {list(categories)}" if categories
                               else "serving; waiting for a command")

    # ---- callbacks (executor thread): cheap, never raise ----
    def _on_image(self, msg) -> None:
        self.stats.count_received()
        try:  # O(1) checks here, so a malformed frame never displaces a good one in the slot
            check_compressed(msg) if isinstance(msg, CompressedImage) else check_image(msg)
        except ImageError as err:
            self._reject_image(err)
            return
        self.slot.put(Frame(payload=msg, stamp_ns=_stamp_ns(msg.header), frame_id=msg.header.frame_id))

    def _reject_image(self, err: ImageError) -> None:
        self.stats.count_rejected(err.reason)
        self.get_logger().warn(f"image rejected ({err.reason}): {err}", throttle_duration_sec=WARN_PERIOD_S)

    def _on_text_command(self, msg: String) -> None:
        self._accept_command(lambda: command_from_string(msg.data, self.params["text_task"]))

    def _on_command(self, msg: SegmentationCommand) -> None:
        self._accept_command(lambda: command_from_msg(msg))

    def _accept_command(self, build) -> None:
        try:
            cmd = self.processor.apply_command(build())
        except CommandError as err:
            self.stats.count_command(rejected_reason="invalid")
            self.get_logger().warn(f"command rejected: {err}", throttle_duration_sec=WARN_PERIOD_S)
            return
        self.stats.count_command()
        what = cmd.text or ", ".join(cmd.categories) or f"{len(cmd.boxes)} boxes, {len(cmd.points)} points"
        self.get_logger().info(f"command {cmd.id}: {cmd.task} {what!r}")

    def _on_reset(self, request, response):
        self.processor.reset()
        response.success = True
        response.message = "temporal state and track ids cleared before the next frame"
        return response

    def _publish_diagnostics(self) -> None:
        self.diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), self.stats.snapshot(),
                                               name=f"{self.get_fully_qualified_name()}: segmentation",
                                               hardware_id=self.device, model=self.model_name,
                                               device=self.device))

    # ---- inference worker ----
    def _inference_loop(self) -> None:
        while not self._stop.is_set():
            frame = self.slot.take(timeout_s=0.2, stamp_ns=self.processor.pending_prompt_stamp())
            if frame is not None:
                self._process(frame)

    def _process(self, frame: Frame) -> None:
        msg = frame.payload
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
            output = self.processor.process(rgb, frame.stamp_ns, frame.frame_id)
            if output is None:
                self.stats.count_dropped(DROP_NO_COMMAND)
                return
            if output.reset_reason:
                self.get_logger().info(f"temporal state cleared: {output.reset_reason}")
            seg = segmentation_message(msg.header, output, rgb.shape[0], rgb.shape[1], latency_ms=0.0)
            seg.latency_ms = (time.monotonic_ns() - frame.received_ns) / 1e6
            self.seg_pub.publish(seg)
            self.stats.count_processed(seg.latency_ms)
        except ImageError as err:  # e.g. a corrupt jpeg: only found when decoding
            self._reject_image(err)
            return
        except Exception as err:  # noqa: BLE001 - one bad frame must not stop the stream
            self.stats.count_dropped(DROP_ERROR)
            self.get_logger().error(f"frame dropped: {type(err).__name__}: {err}",
                                    throttle_duration_sec=WARN_PERIOD_S)
            return
        if self.overlay_pub is not None and self.overlay_pub.get_subscription_count() > 0:
            try:  # only rendered for a viewer: it costs ~10 ms at VGA
                self.overlay_pub.publish(rgb_to_image(render_overlay(rgb, output.result.instances), header=msg.header))
            except Exception as err:  # noqa: BLE001
                self.get_logger().error(f"overlay failed: {err}", throttle_duration_sec=WARN_PERIOD_S)

    def close(self) -> None:
        """Stop the worker (waits for the frame in inference)."""
        self._stop.set()
        self.slot.close()
        self._worker.join(timeout=30)


def main(args=None) -> int:
    """Entry point of `perception_node` and `python -m hyperseg_ros.perception_node`."""
    use_shm_profile()  # before rclpy creates the DDS participant
    rclpy.init(args=args)
    node = None
    try:
        node = PerceptionNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
