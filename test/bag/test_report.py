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
