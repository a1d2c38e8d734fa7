"""The HyperSeg perception node: a thin rclpy lifecycle node over `stream.StreamProcessor`.

    python -m hyperseg_ros.perception_node --ros-args --params-file config/perception.yaml

Topics, QoS, parameters and services follow shared/design/interface.md. It is a managed node:
`configure` loads the model (hyperseg_ros.parameters.build_pipeline), `activate` subscribes to
images and starts publishing, `deactivate` stops that and keeps the model, `cleanup` frees it.
With `autostart` (the default) it goes to active by itself. Callbacks only decode headers,
validate commands and hand frames to a `LatestFrameSlot`; one worker thread runs the model, so
subscriptions, services and diagnostics stay responsive during inference.
"""
from __future__ import annotations

import os
import signal

if __name__ == "__main__":  # run as a program: a stop signal during the imports below ends it with 0 too
    for _sig in (signal.SIGINT, signal.SIGTERM):  # main() installs the handlers that close the node
        signal.signal(_sig, lambda *_: os._exit(0))

import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from hyperseg_ros.command import Command, CommandError
from hyperseg_ros.diagnostics import ImageInput, diagnostic_array
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
from hyperseg_ros.node_process import serve
from hyperseg_ros.overlay import render_overlay
from hyperseg_ros.parameters import (
    PARAMETERS,
    START_UP_PARAMETERS,
    Pipeline,
    build_pipeline,
    check_value,
    dropped_overrides,
    release_memory,
    unknown_names,
    use_threads,
)
from hyperseg_ros.qos import RELIABLE_10, image_qos
from hyperseg_ros.stream import (
    DROP_ERROR,
    DROP_NO_COMMAND,
    DROP_SHUTDOWN,
    Frame,
    LatestFrameSlot,
    StreamStats,
)
from hyperseg_ros.throttle import PerKindThrottle, printable

NODE_NAME = "hyperseg_perception"
WARN_PERIOD_S = 2.0  # bad input warnings are throttled to one per this period and kind
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class PerceptionNode(LifecycleNode):
    """image -> segmentation (+ overlay), commands, reset, diagnostics; a managed (lifecycle) node.

    unconfigured: parameters may be changed; only /diagnostics is published.
    inactive: model loaded; commands and ~/reset are accepted; no image is received.
    active: images are segmented and `segmentation` is published.
    """

    def __init__(self, argv: list[str] | None = None, **kwargs):
        """argv: the process arguments rclpy was initialised with (default sys.argv)."""
        super().__init__(NODE_NAME, **kwargs)
        for name, param in PARAMETERS.items():  # any type is taken: the table's check names a wrong one
            descriptor = ParameterDescriptor(description=param.description, dynamic_typing=True,
                                             read_only=name in START_UP_PARAMETERS)
            self.declare_parameter(name, param.default, descriptor)
        unknown = [n for n in unknown_names(self._parameter_overrides) if not self.has_parameter(n)]
        if unknown:  # a misspelt key of a params file or -p would otherwise be dropped without a word
            self._say("warning", f"unknown parameter(s) {', '.join(map(repr, unknown))} ignored (params file or -p); "
                                 f"the node's parameters: {', '.join(PARAMETERS)}")
        for name, value in dropped_overrides(sys.argv if argv is None else argv,
                                             {n: self.get_parameter(n).value for n in PARAMETERS}):
            self._say("warning", f"-p {name}:={value} was not applied: ROS keeps the params file's value "
                                 f"{self.get_parameter(name).value!r} when the types differ")
        start_up = {name: check_value(name, self.get_parameter(name).value) for name in START_UP_PARAMETERS}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline: Pipeline | None = None  # set while configured (inactive or active)
        self.params: dict = {}  # the parameter values read at configure
        self.stats = StreamStats()
        self._image_subs: list = []  # the image subscription, while active
        self._command_subs: list = []  # while configured
        self.reset_srv = self.seg_pub = self.overlay_pub = None
        self._worker: threading.Thread | None = None
        self.slot: LatestFrameSlot | None = None
        self._stop = threading.Event()
        self._throttle = PerKindThrottle(WARN_PERIOD_S)  # warnings and per-frame notes, per kind
        self._image_at: float | None = None  # monotonic time of the last image received
        self._matched_at: float | None = None  # when an image publisher was first matched
        self._silence_warned = False
        self._command_seq: dict[bytes, int] = {}  # publisher gid -> last command sequence number seen
        self._same_name_warned = False
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(start_up["diagnostics_period_s"], self._publish_diagnostics)

    def _parameter_values(self) -> dict:
        return {name: self.get_parameter(name).value for name in PARAMETERS}

    def _on_set_parameters(self, params) -> SetParametersResult:
        if self.lifecycle_state != "unconfigured":
            return SetParametersResult(successful=False, reason="parameters are read at configure: "
                                       "clean up the node, set them, then configure it again")
        try:
            for param in params:
                if param.name in PARAMETERS:
                    check_value(param.name, param.value)
        except ValueError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    @property
    def lifecycle_state(self) -> str:
        """unconfigured | inactive | active | finalized, or a transition (configuring, ...)."""
        return self._state_machine.current_state[1]

    # ---- lifecycle transitions (executor thread) ----
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self._parameter_values()
        try:
            pipeline = build_pipeline(p)
        except Exception as err:  # noqa: BLE001 - a bad parameter or model fails the transition, not the node
            self._say("error", f"configure failed: {type(err).__name__}: {err}")
            return FAILURE
        self.pipeline, self.params = pipeline, p
        pipeline.processor.on_rejected = self._on_prompt_rejected
        self._say("info", f"model {pipeline.model_name} on {pipeline.device} ({pipeline.dtype}) loaded in "
                          f"{pipeline.load_seconds:.1f} s")
        # publishers and services first: a client that sees our subscriptions can use everything
        self.seg_pub = self.create_lifecycle_publisher(Segmentation, "segmentation", RELIABLE_10)
        self.overlay_pub = (self.create_lifecycle_publisher(Image, "segmentation/overlay", 1)
                            if p["publish_overlay"] else None)
        self.reset_srv = self.create_service(Trigger, "~/reset", self._on_reset)
        self._command_subs = [self.create_subscription(String, "command", self._on_text_command, RELIABLE_10),
                              self.create_subscription(SegmentationCommand, "segmentation_command",
                                                       self._on_command, RELIABLE_10)]
        return super().on_configure(state)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.params
        self._image_at = self._matched_at = None  # silence is counted from now, not across the inactive time
        self._silence_warned = False
        self.slot, self._stop = LatestFrameSlot(self.stats, max_frame_age_ms=p["max_frame_age_ms"]), threading.Event()
        self._worker = threading.Thread(target=self._inference_loop, args=(self.slot, self._stop),
                                        name="hyperseg-inference", daemon=True)
        self._worker.start()
        result = super().on_activate(state)  # enables the lifecycle publishers before frames can arrive
        qos = image_qos(p["image_reliability"])
        if p["compressed_input"]:
            self._image_subs = [self.create_subscription(CompressedImage, "image/compressed", self._on_image, qos)]
        else:
            self._image_subs = [self.create_subscription(Image, "image", self._on_image, qos)]
        categories = self.pipeline.categories
        self._say("info", f"serving; default task: open_vocabulary {list(categories)}" if categories
                  else "serving; waiting for a command")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_serving()
        release_memory(self.pipeline.device)  # inference buffers; the model stays
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("model unloaded")
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_serving()
        self._release()
        return super().on_shutdown(state)

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_serving()
        self._release()
        return SUCCESS  # back to unconfigured

    def _stop_serving(self) -> None:
        """Unsubscribe from images, then let the worker finish (and publish) the frame in inference."""
        for sub in self._image_subs:
            self.destroy_subscription(sub)
        self._image_subs = []
        self._stop.set()
        if self.slot is not None:
            self.slot.close()  # waiting frames are counted as dropped (shutdown)
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._worker = self.slot = None

    def _release(self) -> None:
        """Destroy what configure created and free the model (host and device memory)."""
        if self.pipeline is None:
            return
        for sub in self._command_subs:
            self.destroy_subscription(sub)
        self.destroy_service(self.reset_srv)
        for pub in (self.seg_pub, self.overlay_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        device = self.pipeline.device
        self._command_subs, self.reset_srv, self.seg_pub, self.overlay_pub, self.pipeline = [], None, None, None, None
        release_memory(device)
        use_threads(0)  # num_threads is process-wide: the next configure starts from torch's own count

    # ---- callbacks (executor thread): cheap, never raise ----
    def _on_image(self, msg) -> None:
        self.stats.count_received()
        self._image_at = time.monotonic()
        try:  # O(1) checks here, so a malformed frame never displaces a good one in the slot
            check_compressed(msg) if isinstance(msg, CompressedImage) else check_image(msg)
        except ImageError as err:
            self._reject_image(err)
            return
        slot = self.slot
        if slot is None:  # a message taken just before deactivation
            self.stats.count_dropped(DROP_SHUTDOWN)
            return
        slot.put(Frame(payload=msg, stamp_ns=_stamp_ns(msg.header), frame_id=msg.header.frame_id))

    def _log(self, kind: str, text: str, level: str = "warning") -> None:
        """One line per kind every WARN_PERIOD_S (rclpy throttles per call site, not per kind)."""
        held = self._throttle.allow(kind)
        if held is None:
            return
        self._say(level, text + (f" ({held} more like it in the last {WARN_PERIOD_S:.0f} s)" if held else ""))

    def _say(self, level: str, text: str) -> None:
        """Every variable log line of the node: made printable first (ids, texts, file names and
        errors may carry what a caller or a file sent)."""
        text, logger = printable(text), self.get_logger()  # one call site per severity: rclpy fixes it per call site
        if level == "info":
            logger.info(text)
        elif level == "error":
            logger.error(text)
        else:
            logger.warning(text)

    def _reject_image(self, err: ImageError) -> None:
        self.stats.count_rejected(err.reason)
        self._log(f"image_{err.reason}", f"image rejected ({err.reason}): {err}")

    def _on_text_command(self, msg: String, info) -> None:
        self._count_lost(info)
        self._accept_command(lambda: command_from_string(msg.data, self.params["text_task"]))

    def _on_command(self, msg: SegmentationCommand, info) -> None:
        self._count_lost(info)
        self._accept_command(lambda: command_from_msg(msg))

    def _count_lost(self, info) -> None:
        """Commands a publisher sent that never reached this callback (its queue or ours, depth 10,
        overwrote them in a burst): the gaps in its sequence numbers after the first one seen."""
        gid, seq = bytes(info["publisher_gid"]["data"]), info.get("publication_sequence_number")
        if seq is None:  # the middleware does not number messages
            return
        last = self._command_seq.get(gid)
        if last is not None and seq > last + 1:
            self.stats.count_commands_lost(seq - last - 1)
            self._log("commands_lost", f"{seq - last - 1} command(s) lost before the node saw them (a burst "
                                       "overflowed the depth-10 queue)")
        self._command_seq[gid] = max(seq, last or 0)

    def _accept_command(self, build) -> None:
        try:
            cmd = self.pipeline.processor.apply_command(build())
        except CommandError as err:
            self.stats.count_command(rejected_reason=err.reason)
            self._log(f"command_{err.reason}", f"command rejected ({err.reason}): {err}")
            return
        self.stats.count_command()
        what = cmd.text or ", ".join(cmd.categories) or f"{len(cmd.boxes)} boxes, {len(cmd.points)} points"
        idle = "" if self.lifecycle_state == "active" else " (inactive: answered once the node is activated)"
        self._log("command_accepted", f"command {cmd.id!r}: {cmd.task} {what!r}{idle}", "info")

    def _on_prompt_rejected(self, cmd: Command, err: CommandError) -> None:
        """A visual prompt that does not fit the frame it applies to (inference worker)."""
        self.stats.count_late_rejection(err.reason)
        self._log(f"command_{err.reason}", f"command {cmd.id!r} rejected ({err.reason}) on the frame it applies to: {err}")

    def _on_reset(self, request, response):
        self.pipeline.processor.reset()
        response.success = True
        response.message = "temporal state and track ids cleared before the next frame"
        return response

    def _publish_diagnostics(self) -> None:
        self._warn_same_name()
        pipeline = self.pipeline
        device, model = (pipeline.device, pipeline.model_name) if pipeline is not None else ("", "")
        self.diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), self.stats.snapshot(),
                                               name=f"{self.get_fully_qualified_name()}: segmentation",
                                               hardware_id=device, model=model, device=device,
                                               lifecycle_state=self.lifecycle_state,
                                               image_input=self._image_input()))

    def _warn_same_name(self) -> None:
        """Once per episode: another node with this node's full name (both would answer everything)."""
        me = (self.get_name(), self.get_namespace())
        twins = self.get_node_names_and_namespaces().count(me) > 1
        if twins and not self._same_name_warned:
            self._say("warning", f"another node named {self.get_fully_qualified_name()} is running: both answer every "
                                 "frame and command; give each its own name or namespace")
        self._same_name_warned = twins

    def _image_input(self) -> ImageInput | None:
        """Matched image publishers and how long none of them delivered an image; warns once per
        silence. A publisher whose images never arrive (QoS or transport) is otherwise invisible."""
        subs = self._image_subs
        if not subs:
            return None
        publishers, now = subs[0].get_publisher_count(), time.monotonic()
        if publishers == 0:
            self._matched_at, self._silence_warned = None, False
            return ImageInput(0, 0.0, False)
        if self._matched_at is None:
            self._matched_at = now
        since = now - max(self._image_at or 0.0, self._matched_at)
        silent = since >= float(self.params["image_silence_warn_s"])
        if silent and not self._silence_warned:
            self._say("warning", f"{publishers} image publisher(s) matched on {subs[0].topic_name} but no image "
                                 f"for {since:.0f} s: check the publisher's QoS and Fast DDS profile (README)")
        self._silence_warned = silent
        return ImageInput(publishers, since, silent)

    # ---- inference worker (runs while active) ----
    def _inference_loop(self, slot: LatestFrameSlot, stop: threading.Event) -> None:
        processor = self.pipeline.processor
        while not stop.is_set():
            frame = slot.take(timeout_s=0.2, stamp_ns=processor.pending_prompt_stamp())
            if frame is not None:
                self._process(processor, frame)

    def _process(self, processor, frame: Frame) -> None:
        msg = frame.payload
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
            output = processor.process(rgb, frame.stamp_ns, frame.frame_id)
            if output is None:
                self.stats.count_dropped(DROP_NO_COMMAND)
                return
            if output.reset_reason:  # per kind: a stream that changes every frame would log every frame
                self._log(f"reset_{output.reset_reason}", f"temporal state cleared: {output.reset_reason}", "info")
            seg = segmentation_message(msg.header, output, rgb.shape[0], rgb.shape[1], latency_ms=0.0)
            seg.latency_ms = (time.monotonic_ns() - frame.received_ns) / 1e6
            self.seg_pub.publish(seg)
            self.stats.count_processed(seg.latency_ms)
        except ImageError as err:  # e.g. a corrupt jpeg: only found when decoding
            self._reject_image(err)
            return
        except Exception as err:  # noqa: BLE001 - one bad frame must not stop the stream
            if not self.context.ok():  # the process is ending under us: not the frame's fault
                self.stats.count_dropped(DROP_SHUTDOWN)
                return
            self.stats.count_dropped(DROP_ERROR)
            self._log("frame_error", f"frame dropped: {type(err).__name__}: {err}", "error")
            return
        if self.overlay_pub is not None and self.overlay_pub.get_subscription_count() > 0:
            try:  # only rendered for a viewer: it costs ~10 ms at VGA
                self.overlay_pub.publish(rgb_to_image(render_overlay(rgb, output.result.instances), header=msg.header))
            except Exception as err:  # noqa: BLE001
                if self.context.ok():
                    self._log("overlay_error", f"overlay failed: {err}", "error")

    def start(self) -> bool:
        """configure + activate (what `autostart` does); False when a transition failed."""
        return self.trigger_configure() == SUCCESS and self.trigger_activate() == SUCCESS

    def close(self) -> None:
        """Stop serving and free the model, from any state: the process is ending. The frame in
        inference is finished and published, waiting ones count as dropped (shutdown); the last
        line gives the final counts."""
        self._stop_serving()
        self._release()
        snap = self.stats.snapshot()
        counts = {"frames_received": snap.received, "frames_processed": snap.processed,
                  "frames_dropped": sum(snap.dropped.values()), "frames_rejected": sum(snap.rejected.values()),
                  **{f"dropped_{k}": v for k, v in sorted(snap.dropped.items())},
                  **{f"rejected_{k}": v for k, v in sorted(snap.rejected.items())}}
        self._say("info", "stopped: " + " ".join(f"{k}={v}" for k, v in counts.items()))


# autostart false: without this line nothing is printed until a lifecycle manager configures the node
WAITING = ("unconfigured, waiting for the lifecycle transitions: ros2 lifecycle set {name} configure, "
           "then activate (or a lifecycle manager)")
def main(args=None) -> int:
    """Entry point of `perception_node` and `python -m hyperseg_ros.perception_node`."""
    return serve(lambda: PerceptionNode(argv=args), NODE_NAME, args, waiting=WAITING)


if __name__ == "__main__":
    raise SystemExit(main())
