"""Several cameras, one model: each camera's stream, and the order the inference worker serves them in.

ROS-free, like stream.py. Each camera keeps its own StreamProcessor (its own session: temporal
state, tracker ids, command, two-rate language cache), its own latest-frame slot and its own
counters; the sessions share one loaded model. One worker takes the cameras' frames in turn
(round robin over the cameras with a frame waiting), so a camera that floods cannot starve another;
it takes every waiting camera's frame at once, and their image-only passes run as one batch.
The node without the `cameras` parameter is the case of one camera named "" (unprefixed topics).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hyperseg_ros.command import Command
from hyperseg_ros.model.session import encode_images
from hyperseg_ros.stream import DROP_SHUTDOWN, Frame, LatestFrameSlot, StreamProcessor, StreamStats


class CameraStats(StreamStats):
    """One camera's counters; every count also goes to `totals` (the node's own status)."""

    def __init__(self, totals: StreamStats, **kwargs):
        super().__init__(**kwargs)
        self.totals = totals


def _counted_twice(name: str):
    def count(self, *args, **kwargs):
        getattr(StreamStats, name)(self, *args, **kwargs)
        getattr(self.totals, name)(*args, **kwargs)
    count.__name__ = name
    return count


for _name in ("count_received", "count_dropped", "count_rejected", "count_processed", "count_command",
              "count_commands_lost", "count_late_rejection"):
    setattr(CameraStats, _name, _counted_twice(_name))


@dataclass
class Camera:
    """name: the topic prefix ("" = the node's own topics); slot: set while serving (CameraSet.open)."""

    name: str
    processor: StreamProcessor
    stats: StreamStats
    slot: LatestFrameSlot | None = None

    def topic(self, relative: str) -> str:
        """This camera's name for the node's relative topic `relative` (image -> front/image)."""
        return f"{self.name}/{relative}" if self.name else relative


class CameraSet:
    """The cameras of one node and the worker's turn among them.

    `put` may be called from any thread; `take` runs on the one inference worker. Commands and
    resets go to one camera's processor, or to every camera (`apply_command`, `reset`).
    """

    def __init__(self, cameras: Sequence[Camera]):
        names = [c.name for c in cameras]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"cameras need distinct names, got {names}")
        self.cameras = list(cameras)
        self._cond = threading.Condition()  # shared by the slots: one wait for a frame from any camera
        self._next = 0  # the camera whose turn comes first in the next take
        self._closed = True

    def __getitem__(self, name: str) -> Camera:
        return next(c for c in self.cameras if c.name == name)

    def open(self, max_frame_age_ms: float, capacity: int = LatestFrameSlot.CAPACITY,
             clock: Callable[[], int] = time.monotonic_ns) -> None:
        """Give every camera a fresh latest-frame slot (serving starts)."""
        with self._cond:
            for camera in self.cameras:
                camera.slot = LatestFrameSlot(camera.stats, max_frame_age_ms, capacity, clock, condition=self._cond)
            self._closed = False

    def put(self, camera: Camera, frame: Frame) -> None:
        """Offer a frame of `camera` (already counted as received by the caller)."""
        slot = camera.slot
        if slot is None:  # a message taken just before serving stopped
            camera.stats.count_dropped(DROP_SHUTDOWN)
            return
        slot.put(frame)

    def take(self, timeout_s: float | None = None) -> tuple[Camera, Frame] | None:
        """The next camera in turn that has a frame waiting, and that frame (a visual prompt's frame
        first, see LatestFrameSlot.take); None after `timeout_s` or once closed."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                taken = self._next_frame()
                if taken is not None or self._closed:
                    return taken
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def take_all(self, timeout_s: float | None = None) -> list[tuple[Camera, Frame]]:
        """Like `take`, then the waiting frame of every other camera too (one each, in turn), so that
        their image-only passes can run as one batch; [] after `timeout_s` or once closed."""
        first = self.take(timeout_s)
        if first is None:
            return []
        taken = [first]
        with self._cond:
            while (more := self._next_frame(skip=[c for c, _ in taken])) is not None:
                taken.append(more)
            # the lead moves on by one camera: who is answered first (soonest) takes turns too
            self._next = (self.cameras.index(first[0]) + 1) % len(self.cameras)
        return taken

    def _next_frame(self, skip: Sequence[Camera] = ()) -> tuple[Camera, Frame] | None:
        n = len(self.cameras)
        for k in range(n):
            index = (self._next + k) % n
            camera = self.cameras[index]
            if camera.slot is None or any(camera is c for c in skip):
                continue
            frame = camera.slot.take(timeout_s=0, stamp_ns=camera.processor.pending_prompt_stamp())
            if frame is not None:
                self._next = (index + 1) % n  # the others go first next time
                return camera, frame
        return None

    def close(self) -> None:
        """Stop serving: wake the worker; frames still waiting count as dropped (shutdown) per camera."""
        with self._cond:
            self._closed = True
            for camera in self.cameras:
                if camera.slot is not None:
                    camera.slot.close()
                camera.slot = None
            self._cond.notify_all()

    def apply_command(self, cmd: Command, cameras: Sequence[Camera] | None = None) -> Command:
        """Make `cmd` the command of `cameras` (default: every camera) from their next frame on, with
        one id. It is checked against each camera first, so it applies to all of them or (raising
        CommandError) to none."""
        targets = self.cameras if cameras is None else cameras
        for camera in targets:  # the first check gives it its id; the others keep it
            cmd = camera.processor.check_command(cmd)
        for camera in targets:
            camera.processor.apply_command(cmd, checked=True)
        return cmd

    @staticmethod
    def encode_together(frames: Sequence[tuple[Camera, np.ndarray]]) -> list:
        """The image-only passes of several cameras' frames (uint8 RGB) as one batch through their
        shared model: an EncodedImage each for `StreamProcessor.process`; [None] for a lone frame."""
        if len(frames) < 2:
            return [None] * len(frames)
        model = frames[0][0].processor.session.model
        if any(camera.processor.session.model is not model for camera, _ in frames):
            raise ValueError("cameras batched together must share one model")
        return encode_images(model, [image for _, image in frames])

    def reset(self) -> None:
        """Clear every camera's temporal state and track ids before its next frame."""
        for camera in self.cameras:
            camera.processor.reset()
