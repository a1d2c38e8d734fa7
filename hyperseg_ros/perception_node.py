"""The HyperSeg perception node: a thin rclpy lifecycle node over `stream.StreamProcessor`.

    python -m hyperseg_ros.perception_node --ros-args --params-file config/perception.yaml

Topics, QoS, parameters and services follow shared/design/interface.md. It is a managed node:
`configure` loads the model (hyperseg_ros.parameters.build_pipeline), `activate` subscribes to
images and starts publishing, `deactivate` stops that and keeps the model, `cleanup` frees it.
With `autostart` (the default) it goes to active by itself. Callbacks only decode headers,
validate commands and hand frames to their camera's latest-frame slot (`cameras.CameraSet`); one
worker thread runs the model, so subscriptions, services and diagnostics stay responsive during
inference. With the `cameras` parameter each named camera gets its own prefixed topics and stream
state over the one model; without it the node serves one camera on its own topics.
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
from typing import NoReturn  # noqa: E402

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from hyperseg_ros.camera_ports import CameraPorts
from hyperseg_ros.cameras import Camera, CameraSet, CameraStats
from hyperseg_ros.command import Command, CommandError
from hyperseg_ros.diagnostics import diagnostic_array, diagnostic_status
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
from hyperseg_ros.node_process import end_process, serve
from hyperseg_ros.overlay import render_overlay
from hyperseg_ros.parameters import (
    PARAMETERS,
    START_UP_PARAMETERS,
    Pipeline,
    build_pipeline,
    camera_names,
    check_value,
    dropped_overrides,
    release_memory,
    unknown_names,
    use_threads,
)
from hyperseg_ros.qos import RELIABLE_10, image_qos
from hyperseg_ros.stream import DROP_ERROR, DROP_NO_COMMAND, DROP_SHUTDOWN, Frame, StreamStats
from hyperseg_ros.throttle import PerKindThrottle, printable

NODE_NAME = "hyperseg_perception"
WARN_PERIOD_S = 2.0  # bad input warnings are throttled to one per this period and kind
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class _StageClock:
    """Milliseconds per stage of one frame in the node: `wait` in the latest-frame slot, `decode`,
    `batch` (with several cameras: the image-only passes their frames went through together, and
    the cameras served before this one), the model's own stages (`model_<stage>`; `model_other`: the
    stream's and session's work around them), `message` (RLE and message), `publish`, `overlay`.
    They add up to the frame's time in the node."""

    def __init__(self, wait: float):
        self.stages = {"wait": wait}
        self._at = time.perf_counter()

    def lap(self, stage: str) -> float:
        now = time.perf_counter()
        self.stages[stage] = ms = (now - self._at) * 1e3
        self._at = now
        return ms

    def split_model(self, model_ms: dict[str, float], shared: dict[str, float]) -> None:
        """The lap since decode, split into the model's stages (`total` is the session's sum);
        `shared`: this frame's share of a batch several cameras' frames went through together."""
        lap = self.lap("model_other")
        parts = {f"model_{name}": ms for name, ms in model_ms.items() if name != "total" and name not in shared}
        self.stages.update(parts)
        self.stages["model_other"] = max(0.0, lap - sum(parts.values()))


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _of(camera: Camera | None) -> str:
    """Words for log lines about a named camera (' of camera front'); none for the node's own topics."""
    return f" of camera {camera.name}" if camera is not None and camera.name else ""


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
        self.stats = StreamStats()  # the node's totals (with `cameras`, each camera counts its own too)
        self.cameras: CameraSet | None = None  # while configured
        self._ports: dict[str, CameraPorts] = {}  # camera name -> its ROS ends, while configured
        self._command_subs: list = []  # the node's own command subscriptions, while configured
        self.reset_srv = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._throttle = PerKindThrottle(WARN_PERIOD_S)  # warnings and per-frame notes, per kind
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
            pipeline = build_pipeline(p, announce=lambda line: self._say("info", line))
        except Exception as err:  # noqa: BLE001 - a bad parameter or model fails the transition, not the node
            self._say("error", f"configure failed: {type(err).__name__}: {err}")
            return FAILURE
        self.pipeline, self.params, self.cameras = pipeline, p, self._camera_set(pipeline)
        self._say("info", f"model {pipeline.model_name} on {pipeline.device} ({pipeline.dtype}) loaded in "
                          f"{pipeline.load_seconds:.1f} s")
        # publishers and services first: a client that sees our subscriptions can use everything
        self._ports = {camera.name: self._create_ports(camera) for camera in self.cameras.cameras}
        self.reset_srv = self.create_service(Trigger, "~/reset", self._reset_callback(None))  # every camera
        self._command_subs = self._create_command_subs(None)
        return super().on_configure(state)

    def _camera_set(self, pipeline: Pipeline) -> CameraSet:
        """One stream per camera over the pipeline's model: the first uses the pipeline's processor."""
        names = camera_names(pipeline.params["cameras"])
        cameras = []
        for name in names:
            processor = pipeline.processor if not cameras else pipeline.new_processor()
            camera = Camera(name, processor, CameraStats(self.stats) if name else self.stats)
            processor.on_rejected = self._prompt_rejected_callback(name)
            cameras.append(camera)
        return CameraSet(cameras)

    def _create_ports(self, camera: Camera) -> CameraPorts:
        seg_pub = self.create_lifecycle_publisher(Segmentation, camera.topic("segmentation"), RELIABLE_10)
        overlay_pub = (self.create_lifecycle_publisher(Image, camera.topic("segmentation/overlay"), 1)
                       if self.params["publish_overlay"] else None)
        ports = CameraPorts(camera, seg_pub, overlay_pub)
        if camera.name:  # the unnamed camera answers the node's own commands and ~/reset
            ports.services = [self.create_service(Trigger, f"~/{camera.name}/reset", self._reset_callback(camera.name))]
            ports.command_subs = self._create_command_subs(camera)
        return ports

    def _create_command_subs(self, camera: Camera | None) -> list:
        """`command` and `segmentation_command` of `camera`, or the node's own (None: every camera)."""
        topic, name = (camera.topic, camera.name) if camera is not None else (str, None)
        return [self.create_subscription(String, topic("command"),
                                         lambda msg, info: self._on_text_command(msg, info, self._camera(name)),
                                         RELIABLE_10),
                self.create_subscription(SegmentationCommand, topic("segmentation_command"),
                                         lambda msg, info: self._on_command(msg, info, self._camera(name)), RELIABLE_10)]

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.params
        self.cameras.open(max_frame_age_ms=p["max_frame_age_ms"])
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._inference_loop, args=(self.cameras, self._stop),
                                        name="hyperseg-inference", daemon=True)
        self._worker.start()
        result = super().on_activate(state)  # enables the lifecycle publishers before frames can arrive
        qos = image_qos(p["image_reliability"])
        msg_type, topic = (CompressedImage, "image/compressed") if p["compressed_input"] else (Image, "image")
        for ports in self._ports.values():
            ports.restart_silence()
            ports.image_sub = self.create_subscription(msg_type, ports.camera.topic(topic),
                                                       self._image_callback(ports.camera.name), qos)
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
        for ports in self._ports.values():
            if ports.image_sub is not None:
                self.destroy_subscription(ports.image_sub)
            ports.image_sub = None
        self._stop.set()
        if self.cameras is not None:
            self.cameras.close()  # waiting frames are counted as dropped (shutdown)
        if self._worker is not None:
            self._worker.join(timeout=30)
        self._worker = None

    def _release(self) -> None:
        """Destroy what configure created and free the model (host and device memory)."""
        if self.pipeline is None:
            return
        for ports in self._ports.values():
            for sub in ports.command_subs:
                self.destroy_subscription(sub)
            for srv in ports.services:
                self.destroy_service(srv)
            for pub in (ports.seg_pub, ports.overlay_pub):
                if pub is not None:
                    self.destroy_lifecycle_publisher(pub)
        for sub in self._command_subs:
            self.destroy_subscription(sub)
        self.destroy_service(self.reset_srv)
        device = self.pipeline.device
        self._command_subs, self.reset_srv, self._ports, self.cameras, self.pipeline = [], None, {}, None, None
        release_memory(device)
        use_threads(0)  # num_threads is process-wide: the next configure starts from torch's own count

    # ---- callbacks (executor thread): cheap, never raise ----
    # Closures bind a camera's name (rclpy tells a callback's arguments by its signature), not the
    # camera: rclpy may keep a destroyed callback a while, and the camera holds the model.
    def _camera(self, name: str | None) -> Camera | None:
        return None if name is None else self.cameras[name]

    def _image_callback(self, name: str):
        return lambda msg: self._on_image(msg, self._ports[name])

    def _reset_callback(self, name: str | None):
        return lambda request, response: self._on_reset(request, response, self._camera(name))

    def _prompt_rejected_callback(self, name: str):
        return lambda cmd, err: self._on_prompt_rejected(cmd, err, self.cameras[name])

    def _on_image(self, msg, ports: CameraPorts) -> None:
        camera = ports.camera
        camera.stats.count_received()
        ports.image_at = time.monotonic()
        try:  # O(1) checks here, so a malformed frame never displaces a good one in the slot
            check_compressed(msg) if isinstance(msg, CompressedImage) else check_image(msg)
        except ImageError as err:
            self._reject_image(err, camera)
            return
        self.cameras.put(camera, Frame(payload=msg, stamp_ns=_stamp_ns(msg.header), frame_id=msg.header.frame_id))

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

    def _reject_image(self, err: ImageError, camera: Camera) -> None:
        camera.stats.count_rejected(err.reason)
        self._log(f"image_{err.reason}{_of(camera)}", f"image{_of(camera)} rejected ({err.reason}): {err}")

    def _on_text_command(self, msg: String, info, camera: Camera | None) -> None:
        self._count_lost(info, camera)
        self._accept_command(lambda: command_from_string(msg.data, self.params["text_task"]), camera)

    def _on_command(self, msg: SegmentationCommand, info, camera: Camera | None) -> None:
        self._count_lost(info, camera)
        self._accept_command(lambda: command_from_msg(msg), camera)

    def _stats(self, camera: Camera | None) -> StreamStats:
        """Where a command is counted: its camera's counters, or the node's for a command to every camera."""
        return self.stats if camera is None else camera.stats

    def _count_lost(self, info, camera: Camera | None) -> None:
        """Commands a publisher sent that never reached this callback (its queue or ours, depth 10,
        overwrote them in a burst): the gaps in its sequence numbers after the first one seen."""
        gid, seq = bytes(info["publisher_gid"]["data"]), info.get("publication_sequence_number")
        if seq is None:  # the middleware does not number messages
            return
        last = self._command_seq.get(gid)
        if last is not None and seq > last + 1:
            self._stats(camera).count_commands_lost(seq - last - 1)
            self._log("commands_lost", f"{seq - last - 1} command(s) lost before the node saw them (a burst "
                                       "overflowed the depth-10 queue)")
        self._command_seq[gid] = max(seq, last or 0)

    def _accept_command(self, build, camera: Camera | None) -> None:
        """A command for `camera`, or for every camera (None)."""
        stats, where = self._stats(camera), _of(camera)
        try:
            cmd = self.cameras.apply_command(build(), None if camera is None else [camera])
        except CommandError as err:
            stats.count_command(rejected_reason=err.reason)
            self._log(f"command_{err.reason}", f"command{where} rejected ({err.reason}): {err}")
            return
        stats.count_command()
        what = cmd.text or ", ".join(cmd.categories) or f"{len(cmd.boxes)} boxes, {len(cmd.points)} points"
        idle = "" if self.lifecycle_state == "active" else " (inactive: answered once the node is activated)"
        self._log("command_accepted", f"command {cmd.id!r}{where}: {cmd.task} {what!r}{idle}", "info")

    def _on_prompt_rejected(self, cmd: Command, err: CommandError, camera: Camera) -> None:
        """A visual prompt that does not fit the frame it applies to (inference worker)."""
        camera.stats.count_late_rejection(err.reason)
        self._log(f"command_{err.reason}", f"command {cmd.id!r}{_of(camera)} rejected ({err.reason}) on the frame "
                                           f"it applies to: {err}")

    def _on_reset(self, request, response, camera: Camera | None):
        """~/reset clears every camera; ~/<camera>/reset that camera only."""
        if camera is None:
            self.cameras.reset()
        else:
            camera.processor.reset()
        response.success = True
        response.message = f"temporal state and track ids{_of(camera)} cleared before the next frame"
        return response

    def _publish_diagnostics(self) -> None:
        """The node's status (every camera's frames together), then one per named camera."""
        self._warn_same_name()
        pipeline = self.pipeline
        device, model = (pipeline.device, pipeline.model_name) if pipeline is not None else ("", "")
        common = dict(hardware_id=device, model=model, device=device, lifecycle_state=self.lifecycle_state)
        name, silence_s = self.get_fully_qualified_name(), float(self.params.get("image_silence_warn_s", 0.0))
        inputs = {c: ports.image_input(silence_s, lambda text: self._say("warning", text))
                  for c, ports in self._ports.items()}
        cameras = [diagnostic_status(ports.camera.stats.snapshot(), f"{name}: camera {c}", image_input=inputs[c],
                                     **common) for c, ports in self._ports.items() if c]
        self.diag_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), self.stats.snapshot(),
                                               name=f"{name}: segmentation", image_input=inputs.get(""),
                                               cameras=cameras, **common))

    def _warn_same_name(self) -> None:
        """Once per episode: another node with this node's full name (both would answer everything)."""
        me = (self.get_name(), self.get_namespace())
        twins = self.get_node_names_and_namespaces().count(me) > 1
        if twins and not self._same_name_warned:
            self._say("warning", f"another node named {self.get_fully_qualified_name()} is running: both answer every "
                                 "frame and command; give each its own name or namespace")
        self._same_name_warned = twins

    # ---- inference worker (runs while active) ----
    def _inference_loop(self, cameras: CameraSet, stop: threading.Event) -> None:
        while not stop.is_set():
            decoded = []
            for camera, frame in cameras.take_all(timeout_s=0.2):  # every camera with a frame waiting, in turn
                clock = _StageClock(wait=(time.monotonic_ns() - frame.received_ns) / 1e6)
                rgb = self._decode(camera, frame, clock)
                if rgb is not None:
                    decoded.append((camera, frame, clock, rgb))
            try:  # several cameras' frames: their image-only passes as one batch
                encoded = cameras.encode_together([(camera, rgb) for camera, _, _, rgb in decoded])
            except Exception as err:  # noqa: BLE001 - then each on its own
                self._log("batch_error", f"batched pass failed, frames go one by one: {type(err).__name__}: {err}",
                          "error")
                encoded = [None] * len(decoded)
            for (camera, frame, clock, rgb), enc in zip(decoded, encoded):
                self._process(camera, frame, clock, rgb, enc)

    def _decode(self, camera: Camera, frame: Frame, clock: _StageClock):
        """The frame as uint8 RGB, or None when it cannot be decoded (rejected and counted)."""
        msg = frame.payload
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        except ImageError as err:  # e.g. a corrupt jpeg: only found when decoding
            self._reject_image(err, camera)
            return None
        except Exception as err:  # noqa: BLE001 - one bad frame must not stop the stream
            self._drop_on_error(camera, err)
            return None
        clock.lap("decode")
        return rgb

    def _process(self, camera: Camera, frame: Frame, clock: _StageClock, rgb, encoded=None) -> None:
        msg, stats, ports = frame.payload, camera.stats, self._ports[camera.name]
        if encoded is not None:
            clock.lap("batch")
        try:
            output = camera.processor.process(rgb, frame.stamp_ns, frame.frame_id, encoded)
            if output is None:
                stats.count_dropped(DROP_NO_COMMAND)
                return
            clock.split_model(output.result.timings_ms, shared=encoded.timings_ms if encoded else {})
            if output.reset_reason:  # per kind: a stream that changes every frame would log every frame
                self._log(f"reset_{output.reset_reason}{_of(camera)}",
                          f"temporal state{_of(camera)} cleared: {output.reset_reason}", "info")
            seg = segmentation_message(msg.header, output, rgb.shape[0], rgb.shape[1], latency_ms=0.0)
            clock.lap("message")
            seg.latency_ms = (time.monotonic_ns() - frame.received_ns) / 1e6
            ports.seg_pub.publish(seg)
            clock.lap("publish")
        except Exception as err:  # noqa: BLE001 - one bad frame must not stop the stream
            self._drop_on_error(camera, err)
            return
        overlay_pub = ports.overlay_pub
        if overlay_pub is not None and overlay_pub.get_subscription_count() > 0:
            try:  # only rendered for a viewer: it costs ~10 ms at VGA
                overlay_pub.publish(rgb_to_image(render_overlay(rgb, output.result.instances), header=msg.header))
            except Exception as err:  # noqa: BLE001
                if self.context.ok():
                    self._log("overlay_error", f"overlay failed: {err}", "error")
            clock.lap("overlay")
        stats.count_processed(seg.latency_ms, clock.stages)

    def _drop_on_error(self, camera: Camera, err: Exception) -> None:
        if not self.context.ok():  # the process is ending under us: not the frame's fault
            camera.stats.count_dropped(DROP_SHUTDOWN)
            return
        camera.stats.count_dropped(DROP_ERROR)
        self._log("frame_error", f"frame{_of(camera)} dropped: {type(err).__name__}: {err}", "error")

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
def main(args=None) -> NoReturn:
    """Entry point of `perception_node` and `python -m hyperseg_ros.perception_node`."""
    end_process(serve(lambda: PerceptionNode(argv=args), NODE_NAME, args, waiting=WAITING))


if __name__ == "__main__":
    raise SystemExit(main())
