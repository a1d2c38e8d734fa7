"""`hyperseg_bag report` in detail: the command line of each answer, the summary's numbers and its markdown,
the topic it reads, the frame rate, the outline and banners of the video frames."""
from __future__ import annotations

import array
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hyperseg_ros.msg import Segmentation, SegmentedInstance
from std_msgs.msg import String

from hyperseg_ros import mask_rle
from hyperseg_ros.bag import storage
from hyperseg_ros.bag.report import (
    BANNER_PX,
    _against_truth,
    _outline,
    _summary,
    _verdict,
    banner,
    describe,
    fps,
    judge,
    markdown,
    report,
    segmentations,
    video_frame,
)

BAG = Path(__file__).resolve().parents[1] / "data" / "bag_rgb8_mcap"
H, W = 30, 320  # wide enough for a whole verdict line in a banner (width // 7 characters)


def seg(stamp=0, task="referring", command_id="", text="", categories=(), masks=(), latency=0.0, ids=None):
    s = Segmentation(task=task, command_id=command_id, text=text, categories=list(categories), height=H, width=W,
                     latency_ms=latency)
    s.header.stamp.sec, s.header.stamp.nanosec = divmod(stamp, 10**9)
    for k, m in enumerate(masks):
        s.instances.append(SegmentedInstance(id=(ids or list(range(1, len(masks) + 1)))[k], label="x", score=0.9,
                                             mask_rle=array.array("I", mask_rle.encode(m).tolist())))
    return s


def square(y, x, size=10):
    m = np.zeros((H, W), bool)
    m[y:y + size, x:x + size] = True
    return m


def test_describe_names_the_command():
    assert describe(seg(task="referring", command_id="c1", text="the red cross")) == "referring [c1]: the red cross"
    assert describe(seg(task="open_vocabulary", text="ignored", categories=("star", "circle"))) == \
        "open_vocabulary: star, circle"
    assert describe(seg(task="visual_prompt", command_id="v")) == "visual_prompt [v]"
    assert describe(seg(task="visual_prompt")) == "visual_prompt"


def test_summary_numbers():
    segs = OrderedDict([(10, seg(10, "open_vocabulary", "", categories=("star",), masks=[square(0, 0)], latency=12.34)),
                        (20, seg(20, "referring", "c2", "a", masks=[square(0, 0), square(15, 20)], latency=20.0,
                                 ids=[4, 2])),
                        (30, seg(30, "referring", "c2", "a", latency=30.06)),
                        (40, seg(40, "referring", "c2", "a", masks=[square(0, 0)], latency=7.0, ids=[9]))])
    s = _summary(segs, [{"topic": "/command"}], [5, 10, 20, 30, 40, 50])
    assert (s["frames"], s["processed"], s["not_processed"], s["segmentations"]) == (6, 4, 2, 4)
    assert s["latency_ms"] == {"p50": 16.2, "p90": 27.0, "p99": 29.8, "max": 30.1}
    assert s["commands_sent"] == [{"topic": "/command"}]
    default, c2 = s["commands_answered"]
    assert default == {"command_id": "", "task": "open_vocabulary", "command": "open_vocabulary: star", "frames": 1,
                       "first_frame": 1, "instances_mean": 1.0, "ids": [1]}
    assert (c2["command_id"], c2["frames"], c2["first_frame"], c2["instances_mean"], c2["ids"]) == \
        ("c2", 3, 2, 1.0, [2, 4, 9])
    two = _summary(OrderedDict([(1, seg(1, command_id="a")), (2, seg(2, command_id="b"))]), [], [1, 2])
    assert [c["command_id"] for c in two["commands_answered"]] == ["a", "b"]
    one_third = _summary(OrderedDict([(1, seg(1, masks=[square(0, 0)])), (2, seg(2)), (3, seg(3))]), [], [1, 2, 3])
    assert one_third["commands_answered"][0]["instances_mean"] == 0.33
    assert one_third["commands_answered"][0]["command"] == "referring"
    empty = _summary(OrderedDict(), [], [1, 2])
    assert empty["latency_ms"] == {"p50": None, "p90": None, "p99": None, "max": None}
    assert (empty["processed"], empty["not_processed"], empty["commands_answered"]) == (0, 2, [])


def test_against_truth_skips_frames_without_a_command_and_counts_empty_answers():
    truth = {1: seg(1), 2: seg(2, command_id="c", text="t", masks=[square(0, 0)]),
             3: seg(3, command_id="c", text="t", masks=[square(0, 0)]), 4: seg(4, command_id="c", text="t"),
             5: seg(5, command_id="c", text="t"), 6: seg(6, command_id="c", text="t"),
             7: seg(7, command_id="d", text="u")}
    truth[1].task = ""  # before any command
    answers = {2: seg(2, masks=[square(0, 0)], ids=[3]), 3: seg(3, masks=[square(20, 30)]),
               4: seg(4), 5: seg(5, masks=[square(0, 0)]), 7: seg(7)}
    first, second = _against_truth(answers, truth, [1, 2, 3, 4, 5, 6, 7])
    assert first == {"task": "referring", "command_id": "c", "command": "referring [c]: t", "first_frame": 1,
                     "frames": 5, "answered": 4, "target_frames": 2, "found_frames": 1, "found_share": 0.5,
                     "ids": {"1": [3]}, "ids_per_target": 1, "no_target_frames": 3, "empty_when_no_target": 1}
    assert (second["found_share"], second["ids"], second["ids_per_target"]) == (None, {}, 0)
    assert (second["no_target_frames"], second["empty_when_no_target"]) == (1, 1)
    thirds = {k: seg(k, command_id="c", text="t", masks=[square(0, 0)]) for k in (1, 2, 3)}
    [entry] = _against_truth({1: seg(1, masks=[square(0, 0)])}, thirds, [1, 2, 3])
    assert entry["found_share"] == 0.333


def test_markdown_page():
    summary = {"frames": 3, "processed": 2, "not_processed": 1, "video": "out/demo.mp4",
               "latency_ms": {"p50": 1.5, "p90": 2.0, "p99": 2.5, "max": 3.0},
               "commands_answered": [{"command_id": "", "task": "referring", "command": "a|b", "frames": 2,
                                      "first_frame": 0, "ids": [1, 2]}]}
    assert markdown(summary) == (
        "# hyperseg_ros demo\n\n- frames: 3, processed: 2, not processed: 1\n"
        "- node latency (receive to publish): p50 1.5 ms, p90 2.0 ms, p99 2.5 ms\n- video: out/demo.mp4\n\n"
        "| command id | task | command | frames | first frame | ids |\n|---|---|---|---|---|---|\n"
        "| - | referring | a/b | 2 | 0 | 1 2 |\n")
    summary["ground_truth"] = [
        {"command": "x|y", "task": "referring", "frames": 4, "answered": 3, "target_frames": 3, "found_frames": 2,
         "found_share": 0.667, "ids_per_target": 2, "ids": {"1": [3, 4], "2": [5]}, "empty_when_no_target": 1,
         "no_target_frames": 1},
        {"command": "z", "task": "visual_prompt", "frames": 1, "answered": 0, "target_frames": 0, "found_frames": 0,
         "found_share": None, "ids_per_target": 0, "ids": {}, "empty_when_no_target": 0, "no_target_frames": 1}]
    assert markdown(summary).endswith(
        "| - | referring | a/b | 2 | 0 | 1 2 |\n\n"
        "Against the bag's ground truth (found: every target object has an instance with IoU >= 0.5; ids: the "
        "instance ids it was found under, per target object):\n\n"
        "| command | task | frames | answered | target visible | found | found share | ids per target | "
        "empty when no target |\n|---|---|---|---|---|---|---|---|---|\n"
        "| x/y | referring | 4 | 3 | 3 | 2 | 67% | 2 (1: 3 4; 2: 5) | 1/1 |\n"
        "| z | visual_prompt | 1 | 0 | 0 | 0 | - | 0 (-) | 0/1 |\n")


def _bag(path, stamps_ns, topic="/camera/image_raw"):
    from sensor_msgs.msg import Image

    with storage.BagWriter(path) as writer:
        for t in stamps_ns:
            writer.write(topic, t, Image(height=1, width=1, encoding="rgb8", step=3, data=[0, 0, 0]))
    return path


def test_fps_from_the_median_step(tmp_path):
    assert fps(_bag(tmp_path / "a", [0, 100_000_000, 200_000_000, 500_000_000]), "/camera/image_raw") == 10.0
    assert fps(_bag(tmp_path / "b", [0, 50_000_000]), "/camera/image_raw") == 20.0
    assert fps(_bag(tmp_path / "c", [7]), "/camera/image_raw") == 15.0


def test_segmentations_reads_the_segmentation_topic(tmp_path):
    with storage.BagWriter(tmp_path / "two") as writer:
        writer.write("/other/segmentation", 1, seg(1, text="other"))
        writer.write("/segmentation", 2, seg(5, text="mine"))
        writer.write("/segmentation", 3, seg(6, text="mine too"))
    got = segmentations(tmp_path / "two")
    assert list(got) == [5, 6] and [s.text for s in got.values()] == ["mine", "mine too"]
    with storage.BagWriter(tmp_path / "elsewhere") as writer:
        writer.write("/robot/answers", 1, seg(8, text="only"))
        writer.write("/command", 2, String(data="not an answer"))
    assert [s.text for s in segmentations(tmp_path / "elsewhere").values()] == ["only"]
    with storage.BagWriter(tmp_path / "none") as writer:
        writer.write("/command", 1, String(data="hi"))
    with pytest.raises(ValueError, match=r"none has no hyperseg_ros/msg/Segmentation topic"):
        segmentations(tmp_path / "none")


def test_outline_draws_the_targets_edge_in_white_on_a_copy():
    frame = np.full((H, W, 3), 40, np.uint8)
    out = _outline(frame, seg(masks=[square(5, 10)]))
    assert (frame == 40).all()  # the input is left as it was
    edge = square(5, 10) & ~square(6, 11, 8)  # anti-aliased: bright on the edge, a faint halo one pixel wide
    assert out[edge].min() >= 200 and (out[edge][:, 0] == out[edge][:, 2]).all()  # white: equal channels
    near = square(4, 9, 12) & ~square(7, 12, 6)
    assert (out[~near] == 40).all() and (out[near & ~edge] < 140).all()


def test_banner_lines_and_truncation():
    frame = np.zeros((H, 160, 3), np.uint8)
    out = banner(frame, "short", "second line")
    assert out.shape == (2 * BANNER_PX + H, 160, 3) and (out[2 * BANNER_PX:] == 0).all()
    strip = out[:BANNER_PX]
    assert 200 <= strip.max() <= 235 and (strip[:, 100:] == 24).all() and (strip[:2] == 24).all()
    text = "x" * 40  # 160 px: 22 characters fit (width // 7)
    assert np.array_equal(banner(frame, text), banner(frame, text[:22]))
    assert not np.array_equal(banner(frame, text), banner(frame, text[:21]))


def test_report_summary_files_and_commands_sent(tmp_path):
    segs = tmp_path / "answers"
    with storage.BagWriter(segs) as writer:
        writer.write("/segmentation", 1, seg(0))
    out = tmp_path / "deep" / "er" / "summary.json"
    result = report(BAG, segs, summary=str(out))
    assert result["video"] is None and json.loads(out.read_text()) == result
    assert out.read_text() == json.dumps(result, indent=1) + "\n"
    assert out.with_suffix(".md").read_text() == markdown(result)
    assert result["commands_sent"] == [
        {"bag_time_ns": 1767225599999000000, "topic": "/command", "text": "thE Red CroSS eRm please.", "id": ""},
        {"bag_time_ns": 1767225600132333333, "topic": "/segmentation_command",
         "text": "locate the one that has four sides?", "id": "demo-2"},
        {"bag_time_ns": 1767225600332333333, "topic": "/segmentation_command",
         "text": "triangle, orange hexagon, purple square, circle", "id": "demo-3"},
        {"bag_time_ns": 1767225600532333333, "topic": "/segmentation_command", "text": "", "id": "demo-4"}]
    video = tmp_path / "v" / "w" / "demo.mp4"
    assert report(BAG, segs, video=str(video))["video"] == str(video) and video.stat().st_size > 1000


def test_verdict_line_and_ties():
    truth = seg(masks=[square(0, 0), square(15, 20)], ids=[1, 2])
    both = judge(truth, seg(masks=[square(0, 0), square(0, 0), square(15, 20)], ids=[5, 6, 7]))
    assert both["ids"] == {1: 5, 2: 7}  # of two equal answers, the first (best-ranked) one
    assert _verdict(both) == "ground truth: FOUND: target 1 -> #5 IoU 1.00, target 2 -> #7 IoU 1.00"
    one = judge(truth, seg(masks=[square(0, 0)], ids=[5]))
    assert _verdict(one) == "ground truth: MISSED: target 1 -> #5 IoU 1.00, target 2 missed (best IoU 0.00)"


def _image(value=90):
    from sensor_msgs.msg import Image

    return Image(height=H, width=W, encoding="rgb8", step=3 * W, data=bytes([value]) * (3 * H * W))


def test_video_frames_carry_the_verdict_line_and_the_outline():
    truth = seg(masks=[square(5, 10)], ids=[1])
    answered = video_frame(_image(), seg(masks=[square(5, 10)], ids=[3]), False, 4, truth)
    plain = np.full((H, W, 3), 90, np.uint8)
    assert answered.shape == (2 * BANNER_PX + H, W, 3)
    expected_verdict = banner(plain, "x", _verdict(judge(truth, seg(masks=[square(5, 10)], ids=[3]))))
    assert np.array_equal(answered[BANNER_PX:2 * BANNER_PX], expected_verdict[BANNER_PX:2 * BANNER_PX])
    dropped = video_frame(_image(), None, False, 4, truth)
    expected = banner(_outline(plain, truth), "frame 4: not processed (dropped while the node was busy)",
                      _verdict(judge(truth, None)))
    assert np.array_equal(dropped, expected)


def test_report_of_a_compressed_camera_bag(tmp_path):
    bag = BAG.parent / "bag_jpeg_mcap"
    segs = tmp_path / "answers"
    with storage.BagWriter(segs) as writer:
        writer.write("/segmentation", 1, seg(0))
    video = tmp_path / "demo.mp4"
    result = report(bag, segs, video=str(video))
    assert result["frames"] > 0 and video.stat().st_size > 1000
