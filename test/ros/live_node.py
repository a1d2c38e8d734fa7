"""The perception node as a real subprocess, a real rclpy client for it, and test frames.

Waits are on discovery or on received messages, never fixed sleeps.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from hyperseg_ros.msg import Segmentation, SegmentationCommand
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from hyperseg_ros.image_codec import rgb_to_image
from hyperseg_ros.qos import image_qos, reliable

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "/robot"
DISCOVERY_TIMEOUT_S = 180.0  # the node imports torch and loads the model before it subscribes (cold caches on CI)
ANSWER_TIMEOUT_S = 60.0  # one inference of the test model on 2 busy cores (its first is the slowest), with margin


def qos(is_reliable: bool, depth: int = 10) -> QoSProfile:
    """The contract's profiles (hyperseg_ros.qos): reliable keep-last `depth`, or the camera's best effort."""
    return reliable(depth) if is_reliable else image_qos("best_effort")


def _default_stop_signals() -> None:
    """In the child before exec: SIGINT and SIGTERM as a terminal gives them. A test run started in the
    background (`cmd &` in a script, some CI runners) inherits SIGINT ignored, and Python programs that find
    it ignored at start-up (`ros2 launch`) then never see the SIGINT a test sends."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


class Process:
    """A ROS process of a test (`cmd` run with `env`), its output in `log_path`."""

    def __init__(self, cmd: list[str], env: dict, log_path: Path, cwd: Path = ROOT):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_default_stop_signals)

    def rss_mb(self) -> float:
        """Resident memory of the node process, MiB."""
        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"process exited with {self.proc.returncode}:\n{self.log()[-4000:]}"

    def stop(self, sig=signal.SIGINT, timeout_s: float = 120.0) -> int:
        """Send `sig` and wait; returns the exit code (the process is killed if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"process ignored {sig!r} for {timeout_s} s:\n{self.log()[-4000:]}")
        self._log.close()
        return self.proc.returncode


def failed_start(proc: Process, timeout_s: float = 120.0) -> tuple[int, list[str], str]:
    """A node process that should fail at start -> (exit code, its `configure failed` lines, its log)."""
    code = proc.proc.wait(timeout=timeout_s)
    log = proc.log()
    proc.stop()
    return code, [line for line in log.splitlines() if "configure failed" in line], log


class NodeProcess(Process):
    """`python -P -m hyperseg_ros.perception_node` (or `executable`) with the shipped params file
    (or `params_file`) and overrides."""

    def __init__(self, env: dict, log_path: Path, params: dict, executable: list[str] | None = None,
                 params_file: Path = ROOT / "config" / "perception.yaml"):
        overrides = [arg for name, value in params.items() for arg in ("-p", f"{name}:={value}")]
        executable = executable or [sys.executable, "-P", "-m", "hyperseg_ros.perception_node"]
        cmd = [*executable, "--ros-args", "--params-file", str(params_file), *overrides, "-r", f"__ns:={NAMESPACE}"]
        super().__init__(cmd, env, log_path)


def started_nodes(ros_env: dict, model_dir, tmp_path: Path, **defaults):
    """Body of a `start_node` fixture: yields start(**params) -> a running NodeProcess (params over
    `defaults`); at teardown every node is stopped with SIGINT, which must end it with exit code 0."""
    started: list[NodeProcess] = []

    def start(**params) -> NodeProcess:
        params = {"model_path": str(model_dir), "num_threads": 1, "device": "cpu", **defaults, **params}
        node = NodeProcess(ros_env, tmp_path / f"node{len(started)}.log", params)
        started.append(node)
        return node

    yield start
    for node in started:
        code = node.stop()
        assert code == 0, f"node did not shut down cleanly ({code}):\n{node.log()[-4000:]}"


class Client:
    """The test's own rclpy node: publishes frames and commands, collects what the node sends.
    It talks to the node in `namespace`; `image_topic` and `command_topic` are where that node's
    `image` and `command` are remapped to (relative names are in `namespace`); `image_type` is
    sensor_msgs Image or CompressedImage (then image_topic is the node's `image/compressed`)."""

    def __init__(self, image_reliable: bool = False, namespace: str = NAMESPACE, image_topic: str = "image",
                 command_topic: str = "command", image_type=Image):
        self.namespace = namespace
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("hyperseg_test_client", namespace=namespace, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.image_pub = self.node.create_publisher(image_type, image_topic,
                                                    qos(image_reliable, depth=10 if image_reliable else 1))
        self.text_pub = self.node.create_publisher(String, command_topic, qos(True))
        self.command_pub = self.node.create_publisher(SegmentationCommand, "segmentation_command", qos(True))
        self.segmentations: list[Segmentation] = []
        self.diagnostics: list[DiagnosticArray] = []
        self.node.create_subscription(Segmentation, "segmentation", self.segmentations.append, qos(True, 100))
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, qos(True, 100))
        self.reset_client = self.node.create_client(Trigger, "hyperseg_perception/reset")
        self.change_state_client = self.node.create_client(ChangeState, "hyperseg_perception/change_state")
        self.get_state_client = self.node.create_client(GetState, "hyperseg_perception/get_state")
        self.set_parameters_client = self.node.create_client(SetParameters, "hyperseg_perception/set_parameters")

    def spin_until(self, predicate, timeout_s: float, what: str, node: NodeProcess | None = None):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if node is not None:
                node.assert_alive()
            self.executor.spin_once(timeout_sec=0.05)
        raise AssertionError(f"timed out after {timeout_s} s waiting for {what}"
                             + (f"\nprocess log:\n{node.log()[-4000:]}" if node else ""))

    def wait_for_node(self, node: NodeProcess) -> None:
        """Until the node (which subscribes only once its model is loaded) is matched both ways."""
        self.spin_until(lambda: self.image_pub.get_subscription_count() > 0
                        and self.text_pub.get_subscription_count() > 0
                        and self.command_pub.get_subscription_count() > 0
                        and self.node.count_publishers(f"{self.namespace}/segmentation") > 0,
                        DISCOVERY_TIMEOUT_S, "the node's subscriptions", node)
        assert self.reset_client.wait_for_service(timeout_sec=DISCOVERY_TIMEOUT_S)

    def answer_to(self, stamp: Time, node: NodeProcess, timeout_s: float = ANSWER_TIMEOUT_S) -> Segmentation:
        """The Segmentation whose header stamp is `stamp`."""
        def find():
            return next((s for s in self.segmentations if s.header.stamp == stamp), None)
        return self.spin_until(find, timeout_s, f"the answer to the frame stamped {stamp}", node)

    def latest_diagnostics(self) -> dict[str, str] | None:
        if not self.diagnostics:
            return None
        return {kv.key: kv.value for kv in self.diagnostics[-1].status[0].values}

    def reset(self, node: NodeProcess) -> Trigger.Response:
        future = self.reset_client.call_async(Trigger.Request())
        self.spin_until(future.done, ANSWER_TIMEOUT_S, "the ~/reset response", node)
        return future.result()

    def _call(self, client, request, node: NodeProcess, what: str, timeout_s: float = DISCOVERY_TIMEOUT_S):
        assert client.wait_for_service(timeout_sec=DISCOVERY_TIMEOUT_S), f"no {what} service"
        future = client.call_async(request)
        self.spin_until(future.done, timeout_s, f"the {what} response", node)
        return future.result()

    def lifecycle_state(self, node: NodeProcess) -> str:
        """The node's state label over its lifecycle service (unconfigured, inactive, active, ...)."""
        return self._call(self.get_state_client, GetState.Request(), node, "get_state").current_state.label

    def change_state(self, node: NodeProcess, transition: str) -> bool:
        """Request a transition by label (configure, activate, deactivate, cleanup, shutdown) over
        the node's change_state service; True when it succeeded. Loading a model takes a while."""
        request = ChangeState.Request(transition=Transition(label=transition))
        return self._call(self.change_state_client, request, node, f"change_state {transition}").success

    def set_parameter(self, node: NodeProcess, name: str, value) -> bool:
        """Set one of the node's parameters over its set_parameters service; True when accepted."""
        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self._call(self.set_parameters_client, request, node, "set_parameters").results[0].successful

    def first_answer(self, node: NodeProcess, make_frame, start: int = 0) -> tuple[int, Segmentation]:
        """Best-effort frames may be lost right after discovery: publish make_frame(start),
        make_frame(start + 1), ... (stamped header(i)) until one is answered. -> (i, answer)."""
        sent = [start]

        def answered():
            by_stamp = {(s.header.stamp.sec, s.header.stamp.nanosec): s for s in self.segmentations}
            for i in range(start, sent[0]):
                stamp = header(i).stamp
                if (stamp.sec, stamp.nanosec) in by_stamp:
                    return i, by_stamp[(stamp.sec, stamp.nanosec)]
            self.image_pub.publish(make_frame(sent[0]))
            sent[0] += 1
            self.executor.spin_once(timeout_sec=0.3)
            return None

        return self.spin_until(answered, ANSWER_TIMEOUT_S, "an answer to a best-effort frame", node)

    def diagnostics_where(self, node: NodeProcess, predicate, what: str) -> dict[str, str]:
        """Spin until the latest /diagnostics values satisfy `predicate`; returns them."""
        def check():
            d = self.latest_diagnostics()
            return d if d and predicate(d) else None

        return self.spin_until(check, ANSWER_TIMEOUT_S, what, node)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def header(i: int, frame_id: str = "camera", t0_s: int = 1000, period_ns: int = 33_000_000) -> Header:
    """Stamps 33 ms apart, so consecutive frames continue one stream (no reset gap)."""
    ns = t0_s * 1_000_000_000 + i * period_ns
    return Header(stamp=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id=frame_id)


def scene(i: int, height: int = 120, width: int = 160) -> np.ndarray:
    """A frame of the procedural world's kind: a red disc moving right and back (2 px a frame, whole in the
    frame for any i: a disc cut by the border is not a fair circle) over a grey gradient, and a blue square.
    uint8 [H, W, 3]."""
    img = np.zeros((height, width, 3), np.uint8)
    img[...] = np.linspace(60, 120, width, dtype=np.uint8)[None, :, None]
    yy, xx = np.mgrid[:height, :width]
    cx, cy, r = width * 0.3 + 2 * (15 - abs(i % 30 - 15)), height * 0.5, height * 0.18
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = (220, 30, 30)
    s = int(height * 0.2)
    img[int(height * 0.15):int(height * 0.15) + s, int(width * 0.65):int(width * 0.65) + s] = (30, 40, 220)
    return img


def image(i: int, **kwargs) -> Image:
    return rgb_to_image(scene(i, **{k: v for k, v in kwargs.items() if k in ("height", "width")}),
                        header=header(i, **{k: v for k, v in kwargs.items() if k in ("frame_id",)}))
