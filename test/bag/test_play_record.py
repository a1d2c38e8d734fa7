"""`hyperseg_bag play` and `record` over the live ROS graph (Fast DDS, own domain per test)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hyperseg_ros.bag import storage
from hyperseg_ros.bag.graph import ros_node, spin_until
from hyperseg_ros.bag.record import Recorder

DATA = Path(__file__).resolve().parents[1] / "data"
BAG = DATA / "bag_bgr8_mono8_sqlite3"
TOPICS = ["/camera/image_raw", "/command", "/segmentation_command"]


def _bag_tool(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-P", "-m", "hyperseg_ros.bag", "-q", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def test_play_publishes_every_message_in_order_with_bag_timing(ros_env):
    expected = [(r.topic, r.message()) for r in storage.read(BAG)]
    received = []
    with ros_node("test_recorder") as (node, executor):
        rec = Recorder(node, TOPICS, lambda topic, msgtype, t, data: received.append(
            (topic, storage.message_class(msgtype), data)))
        player = _bag_tool(ros_env, "play", BAG, "--rate", "2")
        assert spin_until(executor, rec.poll, 30), "the player's topics did not appear"
        spin_until(executor, lambda: len(received) >= len(expected) or player.poll() is not None, 60)
        spin_until(executor, lambda: len(received) >= len(expected), 5)  # last samples after the player exits
        stats = json.loads(_finish(player))
    assert stats["published"] == {t: sum(1 for e in expected if e[0] == t) for t in TOPICS}
    assert stats["unmatched"] == [] and stats["failed"] == 0
    # one reliable writer per topic keeps each topic's order; the bag's order is checked per topic
    for topic in TOPICS:
        got = [storage.deserialize_message(data, cls) for t, cls, data in received if t == topic]
        assert got == [m for t, m in expected if t == topic]
    # pacing by the bag's clock is not asserted here: wall-clock bounds depend on the machine's load


def test_record_command_line_writes_what_play_publishes(ros_env, tmp_path):
    out = tmp_path / "recorded"
    recorder = _bag_tool(ros_env, "record", out, "--topics", "/camera/image_raw", "/command",
                         "--count", "10", "--storage", "sqlite3", "--max-duration", "60")
    player = _bag_tool(ros_env, "play", BAG, "--rate", "4", "--topics", "/camera/image_raw", "/command",
                       "--wait-for-subscribers", "30")
    _finish(player)
    stats = json.loads(_finish(recorder))
    assert stats == {"counts": {"/camera/image_raw": 10, "/command": 1}, "missing": []}
    assert storage.topics(out) == {"/camera/image_raw": "sensor_msgs/msg/Image", "/command": "std_msgs/msg/String"}
    played = [r.message() for r in storage.read(BAG, ["/camera/image_raw"])]
    assert [r.message() for r in storage.read(out, ["/camera/image_raw"])] == played


def test_record_ready_file_means_the_first_message_is_kept(ros_env, tmp_path):
    """A script starts its stream once the ready file exists; the very first message must be recorded
    (`make demo` lost its first answers when it started the stream before the recorder had matched)."""
    from std_msgs.msg import String

    from hyperseg_ros.qos import reliable

    out, ready = tmp_path / "recorded", tmp_path / "record.ready"
    with ros_node("test_talker") as (node, executor):
        pub = node.create_publisher(String, "/answers", reliable(10))
        recorder = _bag_tool(ros_env, "record", out, "--topics", "/answers", "--count", "1",
                             "--ready-file", ready, "--max-duration", "60")
        assert spin_until(executor, ready.exists, 60), "the recorder never said it was ready"
        pub.publish(String(data="first"))
        spin_until(executor, lambda: recorder.poll() is not None, 30)
        stats = json.loads(_finish(recorder))
    assert stats == {"counts": {"/answers": 1}, "missing": []}
    assert [r.message().data for r in storage.read(out)] == ["first"]


def test_audio_is_recorded_as_played(ros_env, tmp_path):
    """AudioChunks (the speech node's input) go through play and record unchanged."""
    import numpy as np
    from hyperseg_ros.msg import AudioChunk
    from std_msgs.msg import Header

    tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000).astype("<i2")
    with storage.BagWriter(tmp_path / "voice") as writer:
        for i in range(10):
            at = 1_000_000_000 + i * 100_000_000
            header = Header(frame_id="microphone")
            header.stamp.sec, header.stamp.nanosec = divmod(at, 10**9)
            writer.write("/audio", at, AudioChunk(header=header, sample_rate=16000, channels=1, encoding="S16LE",
                                                  data=tone[i * 1600:(i + 1) * 1600].tobytes()))
    out = tmp_path / "recorded"
    recorder = _bag_tool(ros_env, "record", out, "--topics", "/audio", "--count", "10", "--max-duration", "60")
    player = _bag_tool(ros_env, "play", tmp_path / "voice", "--rate", "4", "--wait-for-subscribers", "30")
    _finish(player)
    assert json.loads(_finish(recorder)) == {"counts": {"/audio": 10}, "missing": []}
    assert storage.topics(out) == {"/audio": "hyperseg_ros/msg/AudioChunk"}
    assert [r.message() for r in storage.read(out)] == [r.message() for r in storage.read(tmp_path / "voice")]
