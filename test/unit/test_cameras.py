"""Several cameras, one model (cameras.CameraSet): the worker serves the cameras in turn, so a flooding
camera does not starve a slow one; commands, resets and frame accounting are each camera's own."""
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hyperseg_ros.cameras import Camera, CameraSet, CameraStats
from hyperseg_ros.command import Command, CommandError
from hyperseg_ros.model import load_model
from hyperseg_ros.parameters import build_pipeline, build_session, camera_names, check, defaults
from hyperseg_ros.stream import (
    DROP_SHUTDOWN,
    DROP_SUPERSEDED,
    RESET_COMMAND,
    RESET_REQUESTED,
    Frame,
    StreamParams,
    StreamProcessor,
    StreamStats,
)

MS = 1_000_000


class StubSession:
    """What StreamProcessor needs of a session, without a model: it records the frames it saw."""

    def __init__(self):
        self.command, self.frames, self.resets = None, [], 0
        self.state = SimpleNamespace(region_tokens=None)

    def set_command(self, command):
        self.command = command

    def check_command(self, command):
        pass

    def reset(self):
        self.resets += 1

    def process(self, image, encoded=None):
        self.frames.append(image)
        return SimpleNamespace(instances=[])


def _cameras(names=("front", "wrist"), capacity=8):
    totals = StreamStats()
    cameras = CameraSet([Camera(n, StreamProcessor(StubSession(), StreamParams(categories=("circle",))),
                                CameraStats(totals)) for n in names])
    cameras.open(max_frame_age_ms=0, capacity=capacity)
    return cameras, totals


def _put(cameras, name, stamp_ns, image=None):
    camera = cameras[name]
    camera.stats.count_received()
    cameras.put(camera, Frame(payload=image if image is not None else np.zeros((60, 80, 3), np.uint8),
                              stamp_ns=stamp_ns, frame_id=name))


def _serve_one(cameras):
    """What the node's worker does with one frame (no wait): process it on its camera, count it."""
    taken = cameras.take(timeout_s=0)
    if taken is None:
        return None
    camera, frame = taken
    camera.processor.process(frame.payload, frame.stamp_ns, frame.frame_id)
    camera.stats.count_processed(latency_ms=1.0)
    return camera.name


def _accounted(snap):
    return snap.processed + sum(snap.dropped.values()) + sum(snap.rejected.values()) + snap.in_flight


def test_a_flooding_camera_does_not_starve_a_slow_one_and_every_frame_is_counted_per_camera():
    cameras, totals = _cameras()
    served = []
    for step in range(30):  # front floods (5 frames per model pass), wrist sends one every third pass
        for k in range(5):
            _put(cameras, "front", (step * 5 + k) * MS)
        if step % 3 == 0:
            _put(cameras, "wrist", step * MS)
        served.append(_serve_one(cameras))
    while (name := _serve_one(cameras)) is not None:
        served.append(name)
    front, wrist = (cameras[n].stats.snapshot() for n in ("front", "wrist"))
    assert wrist.received == 10 and wrist.processed == 10 and not wrist.dropped  # every slow frame served
    assert front.received == 150 and front.processed == served.count("front") >= 20  # every other pass at least
    assert front.dropped == {DROP_SUPERSEDED: 150 - front.processed}  # the flood supersedes only its own frames
    for snap in (front, wrist):
        assert snap.in_flight == 0 and snap.received == _accounted(snap)
    total = totals.snapshot()  # the node's own status: both cameras together
    assert (total.received, total.processed, total.dropped) == (160, front.processed + 10, front.dropped)


def test_cameras_with_frames_waiting_take_turns():
    cameras, _ = _cameras(("a", "b", "c"))
    for i in range(3):
        _put(cameras, "a", i * MS)
    _put(cameras, "c", 0)
    order = [_serve_one(cameras) for _ in range(3)]
    assert order == ["a", "c", None]  # a's two older frames were superseded by its newest
    _put(cameras, "a", 9 * MS)
    _put(cameras, "b", 9 * MS)
    _put(cameras, "c", 9 * MS)
    assert [_serve_one(cameras) for _ in range(3)] == ["a", "b", "c"]


def test_take_all_takes_each_waiting_camera_once_in_turn():
    cameras, _ = _cameras(("a", "b", "c"))
    assert cameras.take_all(timeout_s=0) == []
    _put(cameras, "a", 1 * MS)
    _put(cameras, "c", 1 * MS)
    assert [(c.name, f.stamp_ns) for c, f in cameras.take_all(timeout_s=0)] == [("a", MS), ("c", MS)]
    for name in "abc":
        _put(cameras, name, 2 * MS)
    _put(cameras, "a", 3 * MS)  # supersedes a's frame: one frame per camera and round
    assert [(c.name, f.stamp_ns) for c, f in cameras.take_all(timeout_s=0)] == [("b", 2 * MS), ("c", 2 * MS),
                                                                               ("a", 3 * MS)]  # b leads now
    for name in "abc":
        _put(cameras, name, 4 * MS)
    assert [c.name for c, _ in cameras.take_all(timeout_s=0)] == ["c", "a", "b"]
    assert cameras.take_all(timeout_s=0) == []


def test_the_worker_wakes_for_a_frame_of_any_camera_and_close_counts_waiting_frames_per_camera():
    cameras, _ = _cameras()
    got = []
    worker = threading.Thread(target=lambda: got.append(cameras.take(timeout_s=60)))
    worker.start()
    _put(cameras, "wrist", 1)
    worker.join()
    assert got[0][0].name == "wrist" and got[0][1].stamp_ns == 1
    _put(cameras, "front", 2)
    _put(cameras, "front", 3)
    cameras.close()
    assert cameras.take(timeout_s=60) is None  # closed: no wait
    _put(cameras, "wrist", 4)  # arrived while stopping
    assert cameras["front"].stats.snapshot().dropped == {DROP_SHUTDOWN: 2}
    assert cameras["wrist"].stats.snapshot().dropped == {DROP_SHUTDOWN: 1}


def test_commands_go_to_one_camera_or_to_all_with_one_id():
    cameras, totals = _cameras()
    front, wrist = cameras["front"], cameras["wrist"]
    own = cameras.apply_command(Command(text="the red circle"), [front])
    _put(cameras, "front", 0)
    _put(cameras, "wrist", 0)
    assert {_serve_one(cameras), _serve_one(cameras)} == {"front", "wrist"}
    assert front.processor.command == own and own.id
    assert wrist.processor.command.task == "open_vocabulary"  # the default task goes on there

    every = cameras.apply_command(Command(task="open_vocabulary", categories=("square",)))
    assert front.processor.command == wrist.processor.command == every  # one id for both

    # a visual prompt is checked against each camera's last frame: one that does not fit applies nowhere
    _put(cameras, "wrist", 33 * MS, np.zeros((20, 20, 3), np.uint8))
    _serve_one(cameras)
    with pytest.raises(CommandError):
        cameras.apply_command(Command(task="visual_prompt", boxes=((30, 10, 20, 10),)))
    assert front.processor.command == wrist.processor.command == every


def test_a_reset_of_one_camera_leaves_the_other_alone_and_reset_reaches_every_camera():
    cameras, _ = _cameras()
    stamps = iter(range(0, 10**6, 33))

    def both():  # one frame of each camera, stamps continuing each stream
        return [cameras[n].processor.process(np.zeros((60, 80, 3), np.uint8), next(stamps) * MS, n).reset_reason
                for n in ("front", "wrist")]

    assert both() == [RESET_COMMAND, RESET_COMMAND]  # the default task starts
    cameras["front"].processor.reset()
    assert both() == [RESET_REQUESTED, None]
    assert both() == [None, None]
    cameras.reset()
    assert both() == [RESET_REQUESTED, RESET_REQUESTED]


def test_camera_names_are_checked_and_none_means_the_nodes_own_topics():
    assert camera_names(None) == camera_names([]) == camera_names([" ", ""]) == ("",)
    assert camera_names([" front", "arm/wrist"]) == ("front", "arm/wrist")
    for bad in (["front", "front"], ["1front"], ["front/"], ["/front"], ["front image"], ["~front"]):
        with pytest.raises(ValueError, match="^parameter cameras "):
            check({**defaults(), "cameras": bad})
    with pytest.raises(ValueError, match="distinct"):
        CameraSet([Camera("a", None, StreamStats()), Camera("a", None, StreamStats())])
    assert Camera("front", None, StreamStats()).topic("image/compressed") == "front/image/compressed"
    assert Camera("", None, StreamStats()).topic("image") == "image"


def test_each_camera_gets_its_own_session_over_the_one_loaded_model(model_dir):
    torch.set_num_threads(1)
    params = {**defaults(), "model_path": str(model_dir), "score_threshold": 0.0}
    pipeline = build_pipeline(params, session=build_session(params, *load_model(str(model_dir))))
    first, second = pipeline.processor, pipeline.new_processor()
    assert second.session is not first.session and second.session.model is first.session.model
    assert second.params == first.params and second.session.score_threshold == 0.0
    frame = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    first.apply_command(Command(text="the red circle"))
    for i in range(2):
        first.process(frame, i * 33 * MS, "front")
    out = second.process(frame, 0, "wrist")
    assert out.command.task == "open_vocabulary" and out.reset_reason == RESET_COMMAND
    assert (first.session.state.frame_index, second.session.state.frame_index) == (2, 1)
