"""`hyperseg_bag report`: annotated video and summary from a camera bag and the node's answers."""
from __future__ import annotations

import array
import json
from pathlib import Path

import cv2
import numpy as np
from hyperseg_ros.msg import Segmentation, SegmentedInstance

from hyperseg_ros import mask_rle
from hyperseg_ros.bag import main, storage
from hyperseg_ros.image_codec import image_to_rgb

DATA = Path(__file__).resolve().parents[1] / "data"
BAG = DATA / "bag_rgb8_mcap"


def answers(path: Path) -> list[Segmentation]:
    """Segmentations for the even frames only (the odd ones 'dropped'), one square instance each."""
    segs = []
    with storage.BagWriter(path) as writer:
        for i, record in enumerate(storage.read(BAG, ["/camera/image_raw"])):
            if i % 2:
                continue
            image = record.message()
            mask = np.zeros((image.height, image.width), bool)
            mask[30:90, 40:100] = True
            seg = Segmentation(header=image.header, command_id="cmd-a" if i < 6 else "demo-4",
                               task="referring" if i < 6 else "visual_prompt", text="the red cross" if i < 6 else "",
                               height=image.height, width=image.width, latency_ms=float(10 * (i + 1)))
            seg.instances = [SegmentedInstance(id=3, label="the red cross", class_id=-1, score=0.9,
                                               mask_rle=array.array("I", mask_rle.encode(mask).tolist()))]
            writer.write("/segmentation", record.timestamp + 5_000_000, seg)
            segs.append(seg)
    return segs


def test_video_and_summary(tmp_path, capsys):
    segs = answers(tmp_path / "answers")
    video, summary_path = tmp_path / "out" / "demo.mp4", tmp_path / "out" / "summary.json"
    assert main(["report", str(BAG), "--segmentation-bag", str(tmp_path / "answers"), "--video", str(video),
                 "--summary", str(summary_path)]) == 0
    summary = json.loads(summary_path.read_text())
    assert summary == json.loads(capsys.readouterr().out)
    assert (summary["frames"], summary["processed"], summary["not_processed"], summary["segmentations"]) == (
        10, 5, 5, 5)
    expected = np.percentile([s.latency_ms for s in segs], [50, 90, 99])
    assert [summary["latency_ms"][k] for k in ("p50", "p90", "p99")] == [round(float(v), 1) for v in expected]
    answered = summary["commands_answered"]
    assert [(c["command_id"], c["task"], c["frames"], c["first_frame"], c["ids"]) for c in answered] == [
        ("cmd-a", "referring", 3, 0, [3]), ("demo-4", "visual_prompt", 2, 6, [3])]
    assert [c["topic"] for c in summary["commands_sent"]] == ["/command"] + ["/segmentation_command"] * 3
    md = summary_path.with_suffix(".md").read_text()
    assert "| cmd-a | referring |" in md and "p50" in md

    capture = cv2.VideoCapture(str(video))
    frames = []
    while (ok_frame := capture.read())[0]:
        frames.append(cv2.cvtColor(ok_frame[1], cv2.COLOR_BGR2RGB))
    assert capture.get(cv2.CAP_PROP_FPS) == 15.0
    assert len(frames) == 10 and frames[0].shape == (120 + 22, 160, 3)  # a banner on top of each frame
    originals = [r.message() for r in storage.read(BAG, ["/camera/image_raw"])]
    def tint(i):  # how far the masked square is from the camera image, in the video
        inside = frames[i][22 + 35:22 + 85, 45:95].astype(float)
        return np.abs(inside - image_to_rgb(originals[i])[35:85, 45:95]).mean()

    assert tint(0) > 20 and tint(1) < 10  # answered frames carry the mask, dropped ones are plain


def test_summary_against_the_demo_bags_ground_truth(tmp_path):
    from hyperseg_ros.bag.make_demo import make_demo

    make_demo(tmp_path / "demo", seconds=1.0, fps=15, size=(160, 120), seed=4)
    truths = [r.message() for r in storage.read(tmp_path / "demo", ["/ground_truth"])]
    with storage.BagWriter(tmp_path / "answers") as writer:  # the right answer on frames 0-9, nothing after
        for i, truth in enumerate(truths[:10]):
            seg = Segmentation(header=truth.header, command_id=truth.command_id or "cmd-1", task=truth.task,
                               text=truth.text, categories=truth.categories, height=truth.height, width=truth.width)
            seg.instances = [SegmentedInstance(id=inst.id + (10 if i == 9 else 0), label=inst.label, score=0.9,
                                               mask_rle=inst.mask_rle) for inst in truth.instances]
            writer.write("/segmentation", storage.stamp_ns(truth.header), seg)
    video = tmp_path / "demo.mp4"
    summary = main(["-q", "report", str(tmp_path / "demo"), "--segmentation-bag", str(tmp_path / "answers"),
                    "--video", str(video), "--summary", str(tmp_path / "summary.json")])
    assert summary == 0
    result = json.loads((tmp_path / "summary.json").read_text())["ground_truth"]
    assert [c["task"] for c in result] == ["referring", "reasoning", "open_vocabulary", "visual_prompt"]
    assert sum(c["frames"] for c in result) == 15
    first, second = result[0], result[1]  # commands at frames 0, 4, 8, 11
    assert (first["frames"], first["target_frames"], first["found_frames"], first["ids_per_target"]) == (4, 4, 4, 1)
    assert second["found_frames"] == second["target_frames"] == 4
    third = result[2]  # answered on frames 8 and 9 only, frame 9 under other ids
    assert third["found_frames"] == 2 and third["ids_per_target"] == 2
    assert result[3]["found_frames"] == 0 and result[3]["answered"] == 0
    md = (tmp_path / "summary.md").read_text()
    assert "ground truth" in md and "| 4 | 4 | 4 | 4 | 100% |" in md
    capture = cv2.VideoCapture(str(video))
    ok, frame = capture.read()
    assert ok and frame.shape == (120 + 2 * 22, 160, 3)  # the ground-truth verdict under the command line


def test_spoken_commands_are_listed_and_shown_on_the_frames_answering_them(tmp_path):
    from hyperseg_ros.msg import Transcript

    answers(tmp_path / "answers")
    with storage.BagWriter(tmp_path / "heard") as writer:  # the answers, then the speech node's transcripts
        for record in storage.read(tmp_path / "answers"):
            writer.write(record.topic, record.timestamp, record.message())
        writer.write("/speech/transcript", 1, Transcript(text="the red cross", confidence=1.0, accepted=True,
                                                          alternatives=["the red circle"]))
        writer.write("/speech/transcript", 2, Transcript(text="the blue star", confidence=0.67, accepted=False))
    video, summary_path = tmp_path / "demo.mp4", tmp_path / "summary.json"
    assert main(["-q", "report", str(BAG), "--segmentation-bag", str(tmp_path / "heard"), "--video", str(video),
                 "--summary", str(summary_path)]) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["speech"] == [
        {"text": "the red cross", "confidence": 1.0, "accepted": True, "alternatives": ["the red circle"]},
        {"text": "the blue star", "confidence": 0.67, "accepted": False, "alternatives": []}]
    md = summary_path.with_suffix(".md").read_text()
    assert '- spoken: "the red cross", confidence 1.00, sent as the command' in md
    assert '- spoken: "the blue star", confidence 0.67, not sent (doubtful)' in md
    capture = cv2.VideoCapture(str(video))
    frames = []
    while (ok_frame := capture.read())[0]:
        frames.append(cv2.cvtColor(ok_frame[1], cv2.COLOR_BGR2RGB))
    assert len(frames) == 10 and {f.shape for f in frames} == {(120 + 2 * 22, 160, 3)}  # one size: a line for speech
    heard_line = [f[22:44].max() for f in frames]  # frames 0, 2, 4 answer the spoken command; 6, 8 a visual prompt
    assert min(heard_line[i] for i in (0, 2, 4)) > 150 and max(heard_line[i] for i in (1, 6, 8)) < 90
