"""A bag replayed into the live node over DDS gives what `hyperseg_bag process` gives offline.

Three processes: the perception node, `hyperseg_bag play --lockstep /segmentation` (each image waits
for the node's answer, so none is dropped and the node sees the bag's order) and a recorder in the
test process. The node's image subscription is reliable (`image_reliability`), as for a bag.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from hyperseg_ros import mask_rle
from hyperseg_ros.bag import storage
from hyperseg_ros.bag.graph import ros_node, spin_until
from hyperseg_ros.bag.process import process
from hyperseg_ros.bag.record import Recorder

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "test" / "data"
START_TIMEOUT_S = 120.0  # the node imports torch and loads the model before it subscribes


def run_node(env, params_file, log, compressed: bool) -> subprocess.Popen:
    remap = ("image/compressed:=/camera/image_raw/compressed" if compressed else "image:=/camera/image_raw")
    cmd = [sys.executable, "-P", "-m", "hyperseg_ros.perception_node", "--ros-args", "--params-file",
           str(params_file), "-p", "image_reliability:=reliable", "-p", f"compressed_input:={str(compressed).lower()}",
           "-r", remap]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def same_instances(live, offline) -> None:
    assert [(i.id, i.label, i.class_id) for i in live.instances] == [(i.id, i.label, i.class_id)
                                                                     for i in offline.instances]
    for a, b in zip(live.instances, offline.instances):
        assert math.isclose(a.score, b.score, abs_tol=1e-4)
        assert (mask_rle.decode(a.mask_rle, live.height, live.width)
                == mask_rle.decode(b.mask_rle, offline.height, offline.width)).all()
        assert a.bbox == b.bbox


# One bag keeps the file near a minute (the node's start dominates): the compressed MCAP one, as it
# also exercises `compressed_input`; raw images and sqlite3 are played in test_play_record.py.
@pytest.mark.parametrize("bag", ["bag_jpeg_mcap"])
def test_live_node_and_process_agree(bag, ros_env, params_file, tmp_path):
    compressed = "jpeg" in bag
    image_topic = "/camera/image_raw/compressed" if compressed else "/camera/image_raw"
    with open(tmp_path / "node.log", "wb") as log:
        node = run_node(ros_env, params_file, log, compressed)
        try:
            live = []
            with ros_node("test_segmentation_recorder") as (rclpy_node, executor):
                rec = Recorder(rclpy_node, ["/segmentation"], lambda topic, msgtype, t, data: live.append(
                    storage.deserialize_message(data, storage.message_class(msgtype))))
                # play only once the recorder hears the node: an answer sent before that would be lost
                assert spin_until(executor, lambda: (rec.poll() and rec.matched()) or node.poll() is not None,
                                  START_TIMEOUT_S) and node.poll() is None, (tmp_path / "node.log").read_text()
                player = subprocess.Popen(
                    [sys.executable, "-P", "-m", "hyperseg_ros.bag", "-q", "play", str(DATA / bag),
                     "--lockstep", "/segmentation", "--wait-for-subscribers", str(START_TIMEOUT_S),
                     "--topics", image_topic, "/command", "/segmentation_command"],
                    env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                spin_until(executor, lambda: player.poll() is not None, 300)
                out, err = player.communicate(timeout=10)
                assert player.returncode == 0, err + (tmp_path / "node.log").read_text()
                spin_until(executor, lambda: len(live) >= 10, 10)
        finally:
            node.terminate()
            node.wait(timeout=120)  # SIGTERM during model loading takes effect once loading ends
    stats = json.loads(out)
    assert stats["unanswered"] == 0 and stats["unmatched"] == [], (tmp_path / "node.log").read_text()

    offline_summary = process(DATA / bag, tmp_path / "offline", params_file=params_file, overlay=False,
                              progress=False)
    offline = [r.message() for r in storage.read(tmp_path / "offline", ["/segmentation"])]
    assert len(live) == len(offline) == offline_summary.images == 10
    text_ids = {c["id"] for c in offline_summary.commands if not c["id"].startswith("demo-")}
    for a, b in zip(live, offline):
        assert a.header == b.header
        assert (a.task, a.text, list(a.categories), a.height, a.width) == (b.task, b.text, list(b.categories),
                                                                           b.height, b.width)
        # a String command has no id: the node draws one, `process` derives one from the bag
        assert a.command_id == b.command_id or b.command_id in text_ids
        same_instances(a, b)
    assert sum(len(s.instances) for s in live) >= 10
