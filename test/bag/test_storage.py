"""rosbag2 files written by the bag tools: real type hashes, both storages, rclpy round trip."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hyperseg_ros.msg import Segmentation, SegmentedInstance
from sensor_msgs.msg import Image
from std_msgs.msg import String

from hyperseg_ros.bag import storage
from hyperseg_ros.bag.params import read_ros_parameters

DATA = Path(__file__).resolve().parents[1] / "data"
COMMITTED_BAGS = sorted(DATA.glob("bag_*"))


@pytest.mark.parametrize("name", ["Segmentation", "SegmentedInstance", "SegmentationCommand"])
def test_custom_type_hashes_match_rosidl(name):
    generated = Path(sys.prefix) / "share" / "hyperseg_ros" / "msg" / f"{name}.json"
    expected = json.loads(generated.read_text())["type_hashes"][0]["hash_string"]
    assert storage.typestore().hash_rihs01(f"hyperseg_ros/msg/{name}") == expected


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
def test_round_trip_of_rclpy_messages(tmp_path, fmt):
    seg = Segmentation(command_id="abc", task="referring", text="the red circle", height=2, width=3)
    seg.header.stamp.sec, seg.header.frame_id = 7, "camera"
    seg.instances = [SegmentedInstance(id=4, label="the red circle", class_id=-1, score=0.75, mask_rle=[1, 2, 3])]
    img = Image(height=1, width=2, encoding="mono8", step=2, data=bytes([3, 250]))
    with storage.BagWriter(tmp_path / "bag", fmt) as writer:
        writer.write("/segmentation", 20, seg)
        writer.write("/image", 10, img)
        writer.write("/command", 15, String(data="hi"))
    assert storage.topics(tmp_path / "bag") == {
        "/segmentation": "hyperseg_ros/msg/Segmentation", "/image": "sensor_msgs/msg/Image",
        "/command": "std_msgs/msg/String"}
    records = list(storage.read(tmp_path / "bag"))
    assert [r.timestamp for r in records] == [10, 15, 20]  # bag-time order, not write order
    assert records[0].message() == img
    assert records[1].message().data == "hi"
    assert records[2].message() == seg
    conns = {c.topic: c for c in storage.connections(tmp_path / "bag")}
    assert conns["/segmentation"].digest == storage.typestore().hash_rihs01("hyperseg_ros/msg/Segmentation")


def test_connections_copied_keep_definition_and_hash(tmp_path):
    source = COMMITTED_BAGS[0]
    with storage.BagWriter(tmp_path / "copy", "sqlite3") as writer:
        for conn in storage.connections(source):
            writer.add_topic(conn.topic, conn.msgtype, like=conn)
        for record in storage.read(source):
            writer.write(record.topic, record.timestamp, record.data)
    before = {c.topic: (c.msgtype, c.digest, c.msgdef.data) for c in storage.connections(source)}
    after = {c.topic: (c.msgtype, c.digest, c.msgdef.data) for c in storage.connections(tmp_path / "copy")}
    assert after == before
    assert [(r.topic, r.timestamp, r.data) for r in storage.read(tmp_path / "copy")] == \
        [(r.topic, r.timestamp, r.data) for r in storage.read(source)]


def test_unknown_storage_is_refused(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        storage.BagWriter(tmp_path / "x", "rosbag1")


def test_ros_parameters_merge_blocks_and_flatten(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    a: 1\n    model: {path: m}\n"
                    "node:\n  ros__parameters:\n    a: 2\n    categories: [x, y]\n")
    assert read_ros_parameters(path) == {"a": 2, "model.path": "m", "categories": ["x", "y"]}
    assert read_ros_parameters(None) == {}
