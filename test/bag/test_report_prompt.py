"""The demo video shows a visual prompt: its boxes and points are drawn on the frames answering it."""
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Point
from hyperseg_ros.msg import Segmentation, SegmentationCommand
from sensor_msgs.msg import Image, RegionOfInterest

from hyperseg_ros.bag import report as report_module
from hyperseg_ros.bag import storage
from hyperseg_ros.bag.report import BANNER_PX, PROMPT_COLOUR, draw_prompt, video_frame

BAG = Path(__file__).resolve().parents[1] / "data" / "bag_rgb8_mcap"
H, W = 40, 80


def _prompt() -> SegmentationCommand:
    cmd = SegmentationCommand(id="v1", task="visual_prompt")
    cmd.boxes = [RegionOfInterest(x_offset=10, y_offset=12, width=20, height=15)]
    cmd.points = [Point(x=60.0, y=20.0)]
    return cmd


def _yellow(pixel) -> bool:
    return abs(int(pixel[0]) - PROMPT_COLOUR[0]) < 8 and abs(int(pixel[1]) - PROMPT_COLOUR[1]) < 8 and pixel[2] < 30


def test_boxes_and_points_are_drawn_in_the_prompt_colour_on_a_copy():
    frame = np.full((H, W, 3), 90, np.uint8)
    out = draw_prompt(frame, _prompt())
    assert (frame == 90).all()
    assert _yellow(out[20, 10]) and _yellow(out[12, 20])  # left and top edges of the box
    assert _yellow(out[20, 60]) and _yellow(out[20, 54])  # the point's cross and ring
    assert (out[35:, :5] == 90).all() and (out[20, 15:25] == 90).all()  # inside and away: untouched


def test_a_video_frame_answering_a_visual_prompt_shows_it():
    image = Image(height=H, width=W, encoding="rgb8", step=3 * W, data=bytes([90]) * (3 * H * W))
    seg = Segmentation(task="visual_prompt", command_id="v1", height=H, width=W)
    with_prompt = video_frame(image, seg, False, 0, prompt=_prompt())
    without = video_frame(image, seg, False, 0)
    assert _yellow(with_prompt[BANNER_PX + 20, 10]) and tuple(without[BANNER_PX + 20, 10]) == (90,) * 3


def test_the_report_hands_each_frame_the_prompt_its_answer_follows(tmp_path, monkeypatch):
    stamps = [storage.stamp_ns(r.message().header) for r in storage.read(BAG, ["/camera/image_raw"])]
    answers = tmp_path / "answers"
    with storage.BagWriter(answers) as writer:
        for k, (stamp, command_id) in enumerate(zip(stamps[-2:], ("demo-3", "demo-4"), strict=True)):
            seg = Segmentation(task="visual_prompt", command_id=command_id, height=1, width=1)
            seg.header.stamp.sec, seg.header.stamp.nanosec = divmod(stamp, 10**9)
            writer.write("/segmentation", k + 1, seg)
    given = []
    monkeypatch.setattr(report_module, "video_frame", lambda *a: given.append(a[5]) or np.zeros((8, 8, 3), np.uint8))
    report_module.report(BAG, answers, video=str(tmp_path / "v.mp4"))
    assert given[:-2] == [None] * (len(stamps) - 2) and given[-2] is None  # demo-3 is a category list
    assert [(b.x_offset, b.y_offset, b.width, b.height) for b in given[-1].boxes] == [(18, 21, 48, 46)]


def test_the_strip_shows_the_middle_answer_of_each_command(tmp_path):
    stamps = [storage.stamp_ns(r.message().header) for r in storage.read(BAG, ["/camera/image_raw"])]
    answers = tmp_path / "answers"
    with storage.BagWriter(answers) as writer:
        for k, stamp in enumerate(stamps):
            seg = Segmentation(task="referring", command_id="a" if k < 3 else "b", text="x", height=1, width=1)
            seg.header.stamp.sec, seg.header.stamp.nanosec = divmod(stamp, 10**9)
            writer.write("/segmentation", k + 1, seg)
    segs = report_module.segmentations(answers)
    assert report_module.strip_stamps(segs) == [stamps[1], stamps[3 + (len(stamps) - 3) // 2]]
    for seg in segs.values():
        seg.task = "visual_prompt"  # the frame its prompt was given on
    assert report_module.strip_stamps(segs) == [stamps[0], stamps[3]]
    png = tmp_path / "strip.png"
    report_module.report(BAG, answers, strip=str(png))
    import cv2

    strip = cv2.imread(str(png))
    first = storage.read(BAG, ["/camera/image_raw"])
    image = next(iter(first)).message()
    tile_h = round((image.height + BANNER_PX) * 320 / image.width)
    assert strip.shape == (tile_h, 640, 3)  # two commands: two tiles side by side
