"""`hyperseg_bag process`: every image through the node's stream logic, offline, with the test model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hyperseg_ros import mask_rle
from hyperseg_ros.bag import main, storage
from hyperseg_ros.bag.make_demo import make_demo
from hyperseg_ros.bag.process import process

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGE = "/camera/image_raw"


def segmentations(path):
    return [r.message() for r in storage.read(path, ["/segmentation"])]


def without_latency(seg):
    seg.latency_ms = 0.0
    return seg


@pytest.fixture(scope="module")
def rgb8_output(tmp_path_factory, model_dir):
    """The committed rgb8 MCAP bag processed with the test model (defaults for everything else but
    score_threshold, 0 so that the random model gives instances)."""
    out = tmp_path_factory.mktemp("process") / "out"
    params = tmp_path_factory.mktemp("params") / "perception.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    model_path: {model_dir}\n    device: cpu\n"
                      "    score_threshold: 0.0\n")
    return out, process(DATA / "bag_rgb8_mcap", out, params_file=params, progress=False)


def test_one_segmentation_per_image_with_the_image_header(rgb8_output):
    out, summary = rgb8_output
    images = [r.message() for r in storage.read(DATA / "bag_rgb8_mcap", [IMAGE])]
    segs = segmentations(out)
    assert summary.images == summary.segmentations == len(segs) == len(images) == 10
    assert summary.skipped == {} and summary.errors == 0 and summary.rejected_commands == 0
    for seg, image in zip(segs, images):
        assert seg.header == image.header
        assert (seg.height, seg.width) == (image.height, image.width)
        for inst in seg.instances:
            mask = mask_rle.decode(inst.mask_rle, seg.height, seg.width)
            assert mask.any() and inst.id >= 1 and 0.0 <= inst.score <= 1.0
            assert (inst.bbox.x_offset, inst.bbox.y_offset, inst.bbox.width, inst.bbox.height) == mask_rle.bbox(mask)
    assert sum(len(seg.instances) for seg in segs) >= len(segs)  # masks were checked, not skipped
    overlays = [r.message() for r in storage.read(out, ["/segmentation/overlay"])]
    assert [o.header for o in overlays] == [i.header for i in images]
    assert {(o.encoding, o.height, o.width) for o in overlays} == {("rgb8", 120, 160)}


def test_commands_are_answered_from_the_frame_after_them(rgb8_output):
    out, summary = rgb8_output
    segs = segmentations(out)
    # make-demo's script for 10 frames: commands just before frames 0, 2, 5 and 8
    assert [c["task"] for c in summary.commands] == ["referring", "reasoning", "open_vocabulary", "visual_prompt"]
    ids = [c["id"] for c in summary.commands]
    assert [s.command_id for s in segs] == [ids[0]] * 2 + [ids[1]] * 3 + [ids[2]] * 3 + [ids[3]] * 2
    assert ids[1:] == ["demo-2", "demo-3", "demo-4"]  # a SegmentationCommand's own id is kept
    assert [s.task for s in segs] == ["referring"] * 2 + ["reasoning"] * 3 + ["open_vocabulary"] * 3 + [
        "visual_prompt"] * 2
    assert segs[0].text == summary.commands[0]["text"]
    assert list(segs[5].categories) == summary.commands[2]["categories"]


def test_output_bag_keeps_the_input_and_registers_real_types(rgb8_output):
    out, _ = rgb8_output
    source = {c.topic: (c.msgtype, c.digest) for c in storage.connections(DATA / "bag_rgb8_mcap")}
    written = {c.topic: (c.msgtype, c.digest) for c in storage.connections(out)}
    store = storage.typestore()
    assert written == {**source,
                       "/segmentation": ("hyperseg_ros/msg/Segmentation",
                                         store.hash_rihs01("hyperseg_ros/msg/Segmentation")),
                       "/segmentation/overlay": ("sensor_msgs/msg/Image", store.hash_rihs01("sensor_msgs/msg/Image"))}
    for topic in source:
        assert [r.data for r in storage.read(out, [topic])] == [
            r.data for r in storage.read(DATA / "bag_rgb8_mcap", [topic])]


def test_two_runs_give_identical_segmentations(rgb8_output, params_file, tmp_path):
    out, _ = rgb8_output
    again = process(DATA / "bag_rgb8_mcap", tmp_path / "again", params_file=params_file, storage="sqlite3",
                    overlay=False, progress=False)
    assert again.segmentations == 10 and storage.topics(tmp_path / "again")["/segmentation"]
    # latency_ms is the measured time of each frame; everything else must match
    assert [without_latency(s) for s in segmentations(tmp_path / "again")] == [
        without_latency(s) for s in segmentations(out)]


@pytest.mark.parametrize("bag", ["bag_bgr8_mono8_sqlite3", "bag_jpeg_mcap"])
def test_other_encodings_and_storages(bag, params_file, tmp_path, capsys):
    assert main(["-q", "process", str(DATA / bag), str(tmp_path / "out"), "--params", str(params_file),
                 "--no-overlay"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == summary["segmentations"] == 10 and summary["skipped"] == {}
    assert storage.topics(tmp_path / "out")["/segmentation"] == "hyperseg_ros/msg/Segmentation"
    assert "/segmentation/overlay" not in storage.topics(tmp_path / "out")


@pytest.mark.parametrize("encodings", [["rgba8", "bgra8"], ["png"]])
def test_four_channel_and_png_images(encodings, params_file, tmp_path):
    info = make_demo(tmp_path / "bag", seconds=0.4, size=(160, 120), encodings=encodings, seed=2)
    summary = process(tmp_path / "bag", tmp_path / "out", params_file=params_file, overlay=False, progress=False)
    assert summary.image_topic == info.image_topic
    assert summary.images == summary.segmentations == info.frames == 6 and summary.skipped == {}


def test_unknown_encodings_are_skipped_with_a_count(params_file, tmp_path):
    source = DATA / "bag_rgb8_mcap"
    with storage.BagWriter(tmp_path / "odd", "mcap") as writer:
        for conn in storage.connections(source):
            writer.add_topic(conn.topic, conn.msgtype, like=conn)
        for i, record in enumerate(storage.read(source)):
            msg = record.message()
            if record.topic == IMAGE and storage.stamp_ns(msg.header) % 3 == 0:
                msg.encoding, msg.step = "32FC1", msg.width * 4  # a float (depth) image: no picture to segment
                msg.data = bytes(msg.height * msg.step)
            writer.write(record.topic, record.timestamp, msg)
    odd = [storage.stamp_ns(m.header) % 3 == 0 for m in (r.message() for r in storage.read(source, [IMAGE]))]
    assert 0 < sum(odd) < len(odd)
    summary = process(tmp_path / "odd", tmp_path / "out", params_file=params_file, overlay=False, progress=False)
    assert summary.images == 10 and summary.skipped == {"encoding": sum(odd)}
    assert summary.segmentations == 10 - sum(odd)
    kept = [r.message().header for r in storage.read(source, [IMAGE])]
    assert [s.header for s in segmentations(tmp_path / "out")] == [h for h, o in zip(kept, odd) if not o]
