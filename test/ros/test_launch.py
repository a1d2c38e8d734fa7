"""`ros2 launch hyperseg_ros perception.launch.py` (and two_cameras.launch.py), run for real.

`ros2 launch` runs in its own process and starts the node as a user's launch does; the test talks
to the node over DDS (live_node.Client) and with the ros2 CLI (`node list`, `topic list/echo`,
`lifecycle get/set`), and ends the launch with SIGINT, which must end launch and node with exit
code 0 and no ERROR line. One launched node serves the checks of a class.

The launch files, params file and model come from this source tree: an ament prefix made under
tmp (share/hyperseg_ros/ linked to the tree's launch/, config/, models/, the package's ament index
marker, lib/hyperseg_ros/ linked to the installed executables) goes before this venv on
AMENT_PREFIX_PATH, the layout of `colcon build --symlink-install`. (The install rule for launch/
itself is checked by test_colcon_build.py.)

PyPI has no launch, launch_ros or ros2cli: scripts/setup.sh installs them from ../shared/wheels
when that folder exists (a system ROS 2 has them); without them these tests are skipped.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
import yaml
from hyperseg_ros.msg import AudioChunk, Transcript
from live_node import DISCOVERY_TIMEOUT_S, Client, Process, header, image, scene
from rcl_interfaces.srv import GetParameters
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from hyperseg_ros import mask_rle
from hyperseg_ros.image_codec import rgb_to_compressed, rgb_to_image
from hyperseg_ros.qos import reliable
from hyperseg_ros.speech.pipeline import wav_chunks

ROOT = Path(__file__).resolve().parents[2]
ROS2 = next((str(p) for p in [Path(sys.prefix) / "bin" / "ros2"] if p.is_file()), shutil.which("ros2"))
# `launch` itself is not looked up: the tree's launch/ folder would pass for it as a namespace package
_MISSING = [m for m in ("launch_ros", "ros2launch", "ros2lifecycle", "ros2topic", "ros2node")
            if importlib.util.find_spec(m) is None] + ([] if ROS2 else ["the ros2 executable"])
pytestmark = pytest.mark.skipif(
    bool(_MISSING), reason=f"ROS 2 launch / ros2 CLI not installed ({', '.join(_MISSING)}): PyPI has none; "
                           "scripts/setup.sh installs them from ../shared/wheels when that folder exists")

NODE = "/robot/hyperseg_perception"
SILENCE_S = 3.0  # how long a deactivated node must stay silent


STILL = 10  # the frame of live_node.scene that a still camera shows (its disc moves out of view by frame 45)


def _ground_truth(i: int = STILL) -> dict[str, np.ndarray]:
    """The masks of live_node.scene(i): the red disc and the blue square."""
    img = scene(i)
    return {"the red circle": (img[..., 0] == 220) & (img[..., 1] == 30),
            "the blue square": (img[..., 2] == 220) & (img[..., 0] == 30)}


def still_image(i: int, frame_id: str = "camera") -> Image:
    """scene(STILL) stamped header(i): a camera that does not move."""
    return rgb_to_image(scene(STILL), header=header(i, frame_id=frame_id))


def _iou(instance, answer, target: np.ndarray) -> float:
    mask = mask_rle.decode(instance.mask_rle, answer.height, answer.width)
    return float((mask & target).sum() / (mask | target).sum())


def _best_iou(answer, target: np.ndarray, label: str | None = None) -> float:
    return max([0.0] + [_iou(inst, answer, target) for inst in answer.instances if label in (None, inst.label)])


@pytest.fixture(scope="session")
def source_prefix(tmp_path_factory) -> Path:
    """An ament prefix whose hyperseg_ros share/ is this source tree (see the module docstring)."""
    prefix = tmp_path_factory.mktemp("ament_prefix")
    share = prefix / "share" / "hyperseg_ros"
    share.mkdir(parents=True)
    for name in ("launch", "config"):  # file by file: `ros2 launch` does not walk into linked folders
        (share / name).mkdir()
        for path in (ROOT / name).iterdir():
            (share / name / path.name).symlink_to(path)
    for name in ("models", "msg", "package.xml"):
        (share / name).symlink_to(ROOT / name)
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (index / "hyperseg_ros").touch()
    installed = Path(sys.prefix) / "lib" / "hyperseg_ros"
    assert installed.is_dir(), f"{installed} is missing: run `make setup`"
    lib = prefix / "lib" / "hyperseg_ros"
    lib.mkdir(parents=True)
    for exe in installed.iterdir():
        (lib / exe.name).symlink_to(exe)
    return prefix


def _launch_env(ros_env: dict, prefix: Path) -> dict:
    """ros_env with the source prefix, then this venv (the wheels' own share/ files), then what was set."""
    env = dict(ros_env)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(filter(None, [str(prefix), sys.prefix, os.environ.get("AMENT_PREFIX_PATH")]))
    return env


@pytest.fixture(scope="class")
def launch_env(class_ros_env, source_prefix) -> dict:
    return _launch_env(class_ros_env, source_prefix)


class Launch(Process):
    """`ros2 launch hyperseg_ros <launch_file> name:=value ...` in its own process."""

    def __init__(self, env: dict, log_path: Path, launch_file: str, **arguments):
        cmd = [ROS2, "launch", "hyperseg_ros", launch_file, *(f"{k}:={v}" for k, v in arguments.items())]
        super().__init__(cmd, env, log_path, cwd=log_path.parent)

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.proc.pid).children(recursive=True)

    def stop_cleanly(self, nodes: int = 1) -> None:
        """SIGINT ends launch and its `nodes` nodes with exit code 0, no ERROR line, no process left."""
        children = self.children()
        assert len(children) == nodes, [c.cmdline() for c in children]
        code = self.stop(signal.SIGINT)
        log = self.log()
        assert code == 0, f"ros2 launch exited with {code}:\n{log[-4000:]}"
        assert "[ERROR]" not in log and "Traceback" not in log, log[-4000:]
        assert log.count("process has finished cleanly") == nodes, log[-4000:]
        psutil.wait_procs(children, timeout=10)
        assert not [c for c in children if c.is_running()], "nodes outlived ros2 launch"


def ros2(env: dict, *args: str, until=None, timeout_s: float = 90.0) -> str:
    """stdout of `ros2 <args> --no-daemon --spin-time 3` (no daemon left behind). With `until`, the
    command is repeated (discovery takes a while) until until(stdout) holds; else it must exit 0."""
    deadline = time.monotonic() + timeout_s
    while True:
        proc = subprocess.run([ROS2, *args, "--no-daemon", "--spin-time", "3"], env=env, capture_output=True,
                              text=True, timeout=timeout_s)
        if (until(proc.stdout) if until else proc.returncode == 0) or time.monotonic() > deadline:
            break
    assert (until(proc.stdout) if until else proc.returncode == 0), \
        f"ros2 {' '.join(args)} -> {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _show_args(env: dict, launch_file: str) -> dict[str, tuple[str, str]]:
    """`ros2 launch --show-args hyperseg_ros <file>` -> {name: (description, default)}."""
    proc = subprocess.run([ROS2, "launch", "--show-args", "hyperseg_ros", launch_file], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    blocks = re.findall(r"^    '(\w+)':\n        (.*)\n        \(default: '(.*)'\)$", proc.stdout, re.MULTILINE)
    assert len(blocks) == proc.stdout.count("\n    '"), proc.stdout  # every argument has a default
    return {name: (description, default) for name, description, default in blocks}


def _send_frames_until(client: Client, launch: Launch, predicate, what: str, start: int, make_frame=still_image):
    """Publish make_frame(start), make_frame(start + 1), ... (stamped header(i)) until
    predicate(i, answer) holds for the answer to one of them; returns (i, answer)."""
    sent = [start]

    def check():
        for i in range(start, sent[0]):
            stamp = header(i).stamp
            answer = next((s for s in client.segmentations if s.header.stamp == stamp), None)
            if answer is not None and predicate(i, answer):
                return i, answer
        client.image_pub.publish(make_frame(sent[0]))
        sent[0] += 1
        client.executor.spin_once(timeout_sec=0.3)
        return None

    return client.spin_until(check, 120.0, what, launch)


def _serving(launch: Launch, client: Client, env: dict):
    """Fixture body: the launched node once it serves, stopped (with its client) afterwards."""
    try:
        client.wait_for_node(launch)
        yield SimpleNamespace(launch=launch, client=client, env=env)
    finally:
        launch.stop()
        client.close()


def test_show_args_lists_every_argument_with_description_and_default(source_prefix, ros_env):
    env = _launch_env(ros_env, source_prefix)
    share = source_prefix / "share" / "hyperseg_ros"
    args = _show_args(env, "perception.launch.py")
    assert {name: default for name, (_, default) in args.items()} == {
        "namespace": "", "params_file": str(share / "config" / "perception.yaml"), "image_topic": "image",
        "compressed": "false", "command_topic": "command", "model_path": "", "device": "auto", "managed": "false",
        "cameras": "", "speech": "false", "speech_engine": "grammar", "whisper_model_path": "", "audio_source": "topic"}
    assert all(len(description) > 20 for description, _ in args.values()), args
    assert "['false', 'true', 'external']" in args["managed"][0]
    args = _show_args(env, "two_cameras.launch.py")
    assert {name: default for name, (_, default) in args.items()} == {
        "camera1_namespace": "camera1", "camera1_topic": "/camera1/image_raw",
        "camera2_namespace": "camera2", "camera2_topic": "/camera2/image_raw",
        "params_file": str(share / "config" / "perception.yaml"), "compressed": "false",
        "command_topic": "/command", "model_path": "", "device": "auto", "managed": "false"}
    assert all(len(description) > 20 for description, _ in args.values()), args


class TestPerceptionLaunch:
    """The default (self-starting) launch with every argument set as a robot would set it."""

    @pytest.fixture(scope="class")
    @staticmethod
    def launched(launch_env, model_dir, tmp_path_factory):
        tmp = tmp_path_factory.mktemp("launch")
        params = yaml.safe_load((ROOT / "config" / "perception.yaml").read_text())
        params["/**"]["ros__parameters"].update(categories=["circle", "square"], num_threads=1,
                                                image_reliability="reliable", diagnostics_period_s=0.5)
        (tmp / "params.yaml").write_text(yaml.safe_dump(params))
        launch = Launch(launch_env, tmp / "launch.log", "perception.launch.py", namespace="robot",
                        params_file=tmp / "params.yaml", device="cpu", model_path=model_dir,
                        image_topic="/camera/image_raw", command_topic="/speech/text")
        client = Client(image_reliable=True, image_topic="/camera/image_raw", command_topic="/speech/text")
        yield from _serving(launch, client, launch_env)

    def test_node_serves_under_the_launch_arguments(self, launched, model_dir):
        launch, client = launched.launch, launched.client
        # device and model path from the launch arguments (the params file says auto and "")
        diagnostics = client.diagnostics_where(launch, lambda d: d["lifecycle_state"] == "active", "diagnostics")
        assert (diagnostics["device"], diagnostics["model"]) == ("cpu", str(model_dir))
        # before any command: the default task from the launched params file, the disc found as a circle
        client.image_pub.publish(image(0))
        answer = client.answer_to(header(0).stamp, launch)
        assert (answer.command_id, answer.task, list(answer.categories)) == ("", "open_vocabulary", ["circle", "square"])
        assert _best_iou(answer, _ground_truth(0)["the red circle"], label="circle") > 0.5, answer.instances
        # text commands on the remapped command topic: the named object is the answer
        i = 1
        for text in ("the red circle", "the blue square"):
            client.text_pub.publish(String(data=text))
            i, answer = _send_frames_until(client, launch, lambda _, a: a.text == text, f"an answer to {text!r}", i)
            assert answer.task == "referring" and answer.instances, answer
            truth = _ground_truth()
            other = next(mask for name, mask in truth.items() if name != text)
            best = answer.instances[0]
            assert _iou(best, answer, truth[text]) > 0.5, (text, [(x.label, x.score) for x in answer.instances])
            assert _iou(best, answer, other) < 0.05, text
            i += 1

    def test_ros2_cli_sees_the_node_its_topics_and_its_state(self, launched):
        launch, client, env = launched.launch, launched.client, launched.env
        ros2(env, "node", "list", until=lambda out: NODE in out.split())
        topics = ros2(env, "topic", "list", "-t", until=lambda out: "/robot/segmentation " in out)
        for line in ("/robot/segmentation [hyperseg_ros/msg/Segmentation]",
                     "/robot/segmentation_command [hyperseg_ros/msg/SegmentationCommand]",
                     "/camera/image_raw [sensor_msgs/msg/Image]", "/speech/text [std_msgs/msg/String]"):
            assert line in topics.splitlines(), topics
        assert ros2(env, "lifecycle", "get", NODE, until=lambda out: out.strip()).strip() == "active [3]"
        # `ros2 topic echo` decodes a Segmentation: the message package's type support is found
        subscribers = client.node.count_subscribers("/robot/segmentation")
        # (the type is named: echo gives up at once when its short discovery has not seen the publisher yet)
        echo = subprocess.Popen([ROS2, "topic", "echo", "--once", "--no-daemon", "/robot/segmentation",
                                 "hyperseg_ros/msg/Segmentation"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            def subscribed():
                assert echo.poll() is None, f"ros2 topic echo exited with {echo.returncode}: {echo.communicate()}"
                return client.node.count_subscribers("/robot/segmentation") > subscribers

            client.spin_until(subscribed, DISCOVERY_TIMEOUT_S, "ros2 topic echo's subscription", launch)
            sent, deadline = [], time.monotonic() + 60
            while echo.poll() is None and time.monotonic() < deadline:
                sent.append(100 + len(sent))
                client.image_pub.publish(image(sent[-1]))
                client.answer_to(header(sent[-1]).stamp, launch)
            out, err = echo.communicate(timeout=30)
        finally:
            if echo.poll() is None:
                echo.kill()
        assert echo.returncode == 0, out + err
        message = next(yaml.safe_load_all(out))
        stamps = [(header(i).stamp.sec, header(i).stamp.nanosec) for i in sent]
        assert (message["header"]["stamp"]["sec"], message["header"]["stamp"]["nanosec"]) in stamps, out
        assert message["header"]["frame_id"] == "camera" and message["task"] == "referring", out

    def test_sigint_ends_launch_and_node_cleanly(self, launched):
        launched.launch.stop_cleanly()


class TestManagedLaunch:
    """managed:=true: the node starts unconfigured and the launch file configures, then activates it."""

    @pytest.fixture(scope="class")
    @staticmethod
    def launched(launch_env, model_dir, tmp_path_factory):
        tmp = tmp_path_factory.mktemp("managed")
        launch = Launch(launch_env, tmp / "launch.log", "perception.launch.py", managed="true", namespace="robot",
                        device="cpu", model_path=model_dir)
        yield from _serving(launch, Client(), launch_env)

    def test_launch_brings_the_unconfigured_node_to_active(self, launched):
        launch, client, env = launched.launch, launched.client, launched.env
        assert ros2(env, "lifecycle", "get", NODE, until=lambda out: out.strip()).strip() == "active [3]"
        # the node did not start itself: the launch file drove configure and activate
        client_get = client.node.create_client(GetParameters, "hyperseg_perception/get_parameters")
        response = client._call(client_get, GetParameters.Request(names=["autostart"]), launch, "get_parameters")
        assert response.values[0].bool_value is False
        _, answer = client.first_answer(launch, still_image)
        assert _best_iou(answer, _ground_truth()["the red circle"], label="circle") > 0.5, answer.instances

    def test_deactivate_stops_answers_and_activate_brings_them_back(self, launched):
        launch, client, env = launched.launch, launched.client, launched.env
        assert "Transitioning successful" in ros2(env, "lifecycle", "set", NODE, "deactivate")
        deadline, sent = time.monotonic() + SILENCE_S, range(1000, 1000)
        while time.monotonic() < deadline:
            client.image_pub.publish(image(sent.stop))
            sent = range(sent.start, sent.stop + 1)
            client.executor.spin_once(timeout_sec=0.2)
        stamps = {(header(i).stamp.sec, header(i).stamp.nanosec) for i in sent}
        late = [a.header.stamp for a in client.segmentations if (a.header.stamp.sec, a.header.stamp.nanosec) in stamps]
        assert not late, f"the deactivated node answered frames sent after deactivate: {late}"
        # the launch file activated the node once; it leaves a later deactivate alone
        assert ros2(env, "lifecycle", "get", NODE, until=lambda out: out.strip()).strip() == "inactive [2]"
        assert "Transitioning successful" in ros2(env, "lifecycle", "set", NODE, "activate")
        client.first_answer(launch, image, start=2000)

    def test_sigint_ends_launch_and_node_cleanly(self, launched):
        launched.launch.stop_cleanly()


def test_external_management_leaves_the_node_unconfigured(source_prefix, ros_env, model_dir, tmp_path):
    """managed:=external: the node waits for a lifecycle manager (nothing loads meanwhile)."""
    env = _launch_env(ros_env, source_prefix)
    launch = Launch(env, tmp_path / "launch.log", "perception.launch.py", managed="external", namespace="robot",
                    device="cpu", model_path=model_dir)
    try:
        assert ros2(env, "lifecycle", "get", NODE, until=lambda out: out.strip()).strip() == "unconfigured [1]"
        assert "loaded" not in launch.log()
    finally:
        launch.stop_cleanly()


def test_speech_true_also_starts_the_speech_node_on_the_command_topic(source_prefix, ros_env, model_dir,
                                                                     whisper_model_dir, tmp_path):
    """speech:=true: speech_command runs beside the perception node, in its namespace, with the
    launch's engine and model path, publishing on the perception node's command topic; with
    managed:=true the launch file drives both to active."""
    env = dict(_launch_env(ros_env, source_prefix), HF_HUB_OFFLINE="1")
    launch = Launch(env, tmp_path / "launch.log", "perception.launch.py", namespace="robot", device="cpu",
                    model_path=model_dir, command_topic="/speech/text", speech="true", speech_engine="whisper",
                    whisper_model_path=whisper_model_dir, managed="true")
    client = Client(command_topic="/speech/text")
    try:
        client.wait_for_node(launch)
        ros2(env, "node", "list", until=lambda out: {NODE, "/robot/speech_command"} <= set(out.split()))
        ros2(env, "lifecycle", "get", "/robot/speech_command", until=lambda out: out.strip() == "active [3]")
        get = client.node.create_client(GetParameters, "speech_command/get_parameters")
        values = client._call(get, GetParameters.Request(names=["engine", "whisper_model_path", "autostart"]), launch,
                              "the speech node's parameters").values
        assert [values[0].string_value, values[1].string_value, values[2].bool_value] == [
            "whisper", str(whisper_model_dir), False]
        client.spin_until(lambda: any(i.node_name == "speech_command" and i.node_namespace == "/robot"
                                      for i in client.node.get_publishers_info_by_topic("/speech/text")),
                          DISCOVERY_TIMEOUT_S, "the speech node's publisher on /speech/text", launch)
        transcripts = []
        client.node.create_subscription(Transcript, "speech/transcript", transcripts.append, reliable(10))
        audio = client.node.create_publisher(AudioChunk, "audio", reliable(100))
        client.spin_until(lambda: audio.get_subscription_count() > 0, DISCOVERY_TIMEOUT_S, "the audio subscription",
                          launch)
        burst = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
        x = np.concatenate([np.zeros(8000), burst, np.zeros(16000)]).astype(np.float32)
        for i, chunk in enumerate(wav_chunks(x, 16000)):
            audio.publish(AudioChunk(header=header(i, frame_id="mic", period_ns=100_000_000), sample_rate=16000,
                                     channels=1, encoding="S16LE", data=chunk))
        client.spin_until(lambda: transcripts, 60, "a transcript from the launched speech node", launch)
    finally:
        client.close()
        launch.stop_cleanly(nodes=2)


def test_two_cameras_two_namespaced_nodes_on_compressed_images(source_prefix, ros_env, model_dir, tmp_path):
    env = _launch_env(ros_env, source_prefix)
    launch = Launch(env, tmp_path / "launch.log", "two_cameras.launch.py", device="cpu", model_path=model_dir,
                    camera1_namespace="left", camera1_topic="/left/image_raw",
                    camera2_namespace="right", camera2_topic="/right/image_raw", compressed="true")
    # compressed:=true: each node subscribes to <camera topic>/compressed, as image_transport names it
    clients = {side: Client(namespace=f"/{side}", image_topic=f"/{side}/image_raw/compressed",
                            command_topic="/command", image_type=CompressedImage)
               for side in ("left", "right")}

    def frame(i: int, side: str) -> CompressedImage:
        return rgb_to_compressed(scene(STILL), header=header(i, frame_id=side), fmt="png")

    try:
        for client in clients.values():
            client.wait_for_node(launch)
        nodes = ros2(env, "node", "list", until=lambda out: {"/left/hyperseg_perception",
                                                             "/right/hyperseg_perception"} <= set(out.split()))
        assert NODE not in nodes
        # each node answers its own camera, in its own namespace
        for side, client in clients.items():
            i, answer = client.first_answer(launch, lambda i, side=side: frame(i, side))
            assert answer.header.frame_id == side
        # one command topic reaches both
        clients["left"].text_pub.publish(String(data="the red circle"))
        for side, client in clients.items():
            _, answer = _send_frames_until(client, launch, lambda _, a: a.text == "the red circle", "the command",
                                           100, lambda i, side=side: frame(i, side))
            assert answer.instances, side
            assert _iou(answer.instances[0], answer, _ground_truth()["the red circle"]) > 0.5, side
    finally:
        for client in clients.values():
            client.close()
        launch.stop_cleanly(nodes=2)


def test_the_cameras_argument_serves_several_cameras_with_one_node(source_prefix, ros_env, model_dir, tmp_path):
    env = _launch_env(ros_env, source_prefix)
    launch = Launch(env, tmp_path / "launch.log", "perception.launch.py", namespace="robot", device="cpu",
                    model_path=model_dir, cameras="front, wrist")
    clients = {name: Client(namespace=f"/robot/{name}") for name in ("front", "wrist")}  # front/image, ...
    try:
        for name, client in clients.items():
            client.spin_until(lambda c=client, n=name: c.image_pub.get_subscription_count() > 0
                              and c.text_pub.get_subscription_count() > 0
                              and c.node.count_publishers(f"/robot/{n}/segmentation") > 0,
                              DISCOVERY_TIMEOUT_S, f"camera {name}'s topics", launch)
        assert clients["front"].node.count_subscribers("/robot/image") == 0  # no camera on the node's own topics
        # the wrist's own command; the front camera goes on with the default task
        clients["wrist"].text_pub.publish(String(data="the blue square"))
        for name, client in clients.items():
            i, answer = _send_frames_until(client, launch, lambda _, a, n=name: n == "front" or a.text != "",
                                           f"camera {name}'s answer", 0, lambda i, n=name: still_image(i, frame_id=n))
            assert answer.header.frame_id == name
            if name == "front":
                assert answer.task == "open_vocabulary"
                assert _best_iou(answer, _ground_truth()["the red circle"], label="circle") > 0.5, answer.instances
            else:
                assert answer.text == "the blue square" and answer.instances
                assert _iou(answer.instances[0], answer, _ground_truth()["the blue square"]) > 0.5, answer.instances
        assert "model " in launch.log() and launch.log().count("loaded in") == 1  # one model for both
    finally:
        for client in clients.values():
            client.close()
        launch.stop_cleanly()
