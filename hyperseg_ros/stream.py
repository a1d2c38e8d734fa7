"""Stream logic of the node, free of ROS: commands, reset rules, latest-frame slot, statistics.

Shared by the perception node (live camera) and `hyperseg_bag process` (offline, every frame).
The rules are those of the interface contract (shared/design/interface.md, "Behaviour").
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperseg_ros.command import Command, CommandError, CommandLimits, validate_command

if TYPE_CHECKING:
    from hyperseg_ros.model.session import FrameResult, SegmentationSession

# reset_reason values (also logged by the node)
RESET_COMMAND = "new_command"
RESET_REQUESTED = "reset_requested"
RESET_IMAGE_SIZE = "image_size_changed"
RESET_FRAME_ID = "frame_id_changed"
RESET_STAMP_BACKWARDS = "stamp_backwards"
RESET_STAMP_GAP = "stamp_gap"


@dataclass(frozen=True)
class StreamParams:
    """Stream behaviour; the node fills it from its ROS parameters of the same names."""

    temporal_reset_gap_s: float = 1.0  # a forward stamp jump larger than this clears temporal state
    max_frame_age_ms: float = 500.0  # frames waiting longer than this are dropped (0 = never)
    categories: tuple[str, ...] = ()  # default open-vocabulary task before any command ("" = none)
    limits: CommandLimits = CommandLimits()  # what one command may ask for


@dataclass
class StreamOutput:
    """One processed frame: the model's answer, the command it answers, why state was cleared."""

    result: FrameResult
    command: Command
    reset_reason: str | None  # one of the RESET_* values, None when state was carried over


class StreamProcessor:
    """Feeds the frames of one stream to a SegmentationSession, applying commands and reset rules.

    `apply_command` and `reset` may be called from any thread and return at once; they take
    effect at the start of the next `process`, which runs on one thread (the inference worker).
    A visual prompt that does not fit the frame it applies to is rejected there: `on_rejected`
    (settable attribute) gets the command and the CommandError, and the active command (or the
    default task) goes on.
    """

    def __init__(self, session: SegmentationSession, params: StreamParams = StreamParams(),
                 on_rejected: Callable[[Command, CommandError], None] | None = None):
        self.session = session
        self.params = params
        self.on_rejected = on_rejected
        self._lock = threading.Lock()
        self._pending: Command | None = None
        self._reset_requested = False
        self._last: tuple[tuple[int, int], str, int] | None = None  # (h, w), frame_id, stamp_ns
        self._default: Command | None = None
        if params.categories:  # the default task answers frames until a command arrives; id ""
            self._default = validate_command(Command(task="open_vocabulary", categories=tuple(params.categories)))
        self._pending = self._default

    @property
    def command(self) -> Command | None:
        """The command being answered (the pending one once it is applied)."""
        with self._lock:
            return self._pending or self.session.command

    def check_command(self, cmd: Command) -> Command:
        """`cmd` validated (boxes/points against the last frame's size, for an early answer) and
        given an id if it has none; nothing is applied. Raises CommandError."""
        with self._lock:
            size = self._last[0] if self._last else None
        cmd = validate_command(cmd, size, self.params.limits)
        self.session.check_command(cmd)  # what the model can read
        return cmd if cmd.id else replace(cmd, id=uuid.uuid4().hex[:12])

    def apply_command(self, cmd: Command, checked: bool = False) -> Command:
        """Make `cmd` the active command from the next frame on, after `check_command` (skipped when
        `checked`: the caller did it). Raises CommandError. `process` checks boxes/points again
        against the frame they apply to."""
        if not checked:
            cmd = self.check_command(cmd)
        with self._lock:
            self._pending = cmd
        return cmd

    def reset(self) -> None:
        """Clear temporal state and track ids before the next frame; the active command stays."""
        with self._lock:
            self._reset_requested = True

    def pending_prompt_stamp(self) -> int | None:
        """Stamp of a visual-prompt command not yet applied (its frame, if buffered, goes first)."""
        with self._lock:
            cmd = self._pending
        if cmd is not None and cmd.task == "visual_prompt" and cmd.stamp_ns:
            return cmd.stamp_ns
        return None

    def process(self, image_rgb: np.ndarray, stamp_ns: int, frame_id: str, encoded=None) -> StreamOutput | None:
        """Run the session on one frame of the stream.

        image_rgb: uint8 [H, W, 3]; stamp_ns: header stamp in ns; frame_id: header frame_id;
        encoded: the frame's image-only passes, when batched with other streams' (model.encode_images).
        Returns None when no command is active (no default categories and none received yet).
        """
        size = (int(image_rgb.shape[0]), int(image_rgb.shape[1]))
        with self._lock:
            pending, self._pending = self._pending, None
            reset_requested, self._reset_requested = self._reset_requested, False
            last, self._last = self._last, (size, frame_id, int(stamp_ns))
        reason = None
        command = self.session.command  # the session keeps the active command
        if pending is not None:
            try:  # the prompts are drawn on this frame: they must lie inside it
                pending = validate_command(pending, size)
            except CommandError as err:
                if self.on_rejected is not None:
                    self.on_rejected(pending, err)
                pending = self._default if command is None else None  # what was served goes on
        if pending is not None:
            self.session.set_command(pending)  # clears all temporal state
            command, reason = self.session.command, RESET_COMMAND
        elif command is not None:
            reason = RESET_REQUESTED if reset_requested else self._stream_break(last, size, frame_id, int(stamp_ns))
            if reason is not None:
                self._reset_session()
        if command is None:
            return None
        return StreamOutput(self.session.process(image_rgb, encoded), command, reason)

    def _reset_session(self) -> None:
        """Clear temporal state and track ids. A visual prompt's region tokens stay: they were taken
        from the frame the prompt was drawn on and cannot be drawn again on a later frame."""
        region_tokens = self.session.state.region_tokens
        self.session.reset()
        self.session.state.region_tokens = region_tokens

    def _stream_break(self, last, size, frame_id: str, stamp_ns: int) -> str | None:
        """Why this frame does not continue the previous one, or None if it does."""
        if last is None:
            return None
        last_size, last_frame_id, last_stamp = last
        if size != last_size:
            return RESET_IMAGE_SIZE
        if frame_id != last_frame_id:
            return RESET_FRAME_ID
        if stamp_ns < last_stamp:
            return RESET_STAMP_BACKWARDS
        if stamp_ns - last_stamp > self.params.temporal_reset_gap_s * 1e9:
            return RESET_STAMP_GAP
        return None


@dataclass
class Frame:
    """A received frame waiting for inference; `payload` is the undecoded message."""

    payload: Any
    stamp_ns: int
    frame_id: str
    received_ns: int = field(default_factory=time.monotonic_ns)  # monotonic clock, for age and latency


@dataclass(frozen=True)
class StatsSnapshot:
    received: int
    processed: int
    dropped: dict[str, int]
    rejected: dict[str, int]
    commands_received: int
    commands_rejected: dict[str, int]
    latency_p50_ms: float  # receive-to-publish over the last `window` processed frames; nan if none
    latency_p99_ms: float
    processed_per_s: float  # over the same window
    commands_lost: int = 0  # publisher sequence numbers skipped: overwritten in a queue before the node saw them
    stage_mean_ms: dict[str, float] = field(default_factory=dict)  # where a frame's time went (see count_processed)

    @property
    def in_flight(self) -> int:
        """Frames received but not yet processed, dropped or rejected (waiting or in inference)."""
        return self.received - self.processed - sum(self.dropped.values()) - sum(self.rejected.values())


class StreamStats:
    """Thread-safe counters: every frame received ends up processed, dropped or rejected."""

    def __init__(self, window: int = 512, clock: Callable[[], float] = time.monotonic, stage_window: int = 64):
        self._lock = threading.Lock()
        self._clock = clock
        self._received = self._processed = self._commands = self._commands_lost = 0
        self._dropped: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._commands_rejected: Counter[str] = Counter()
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._done_at: deque[float] = deque(maxlen=window)
        self._stages: deque[dict[str, float]] = deque(maxlen=stage_window)

    def count_received(self) -> None:
        with self._lock:
            self._received += 1

    def count_dropped(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self._dropped[reason] += n

    def count_rejected(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def count_processed(self, latency_ms: float, stages_ms: dict[str, float] | None = None) -> None:
        """stages_ms: milliseconds per stage of this frame; the snapshot gives each stage's mean per
        frame over the last `stage_window` frames (0 where a frame skipped it), so that they add up."""
        with self._lock:
            self._processed += 1
            self._latency_ms.append(float(latency_ms))
            self._done_at.append(self._clock())
            if stages_ms is not None:
                self._stages.append(dict(stages_ms))

    def count_command(self, rejected_reason: str | None = None) -> None:
        with self._lock:
            self._commands += 1
            if rejected_reason is not None:
                self._commands_rejected[rejected_reason] += 1

    def count_commands_lost(self, n: int) -> None:
        with self._lock:
            self._commands_lost += n

    def count_late_rejection(self, reason: str) -> None:
        """A command counted when received, rejected when it met its frame (a visual prompt)."""
        with self._lock:
            self._commands_rejected[reason] += 1

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            lat = np.asarray(self._latency_ms, dtype=np.float64)
            done = list(self._done_at)
            p50, p99 = (np.percentile(lat, [50, 99]).tolist() if lat.size else (float("nan"), float("nan")))
            rate = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0
            names = sorted({name for stages in self._stages for name in stages})
            means = {name: sum(s.get(name, 0.0) for s in self._stages) / len(self._stages) for name in names}
            return StatsSnapshot(self._received, self._processed, dict(self._dropped), dict(self._rejected),
                                 self._commands, dict(self._commands_rejected), p50, p99, rate,
                                 self._commands_lost, means)


# drop reasons
DROP_SUPERSEDED = "superseded"  # a newer frame arrived while inference was busy
DROP_STALE = "stale"  # waited longer than max_frame_age_ms
DROP_SHUTDOWN = "shutdown"
DROP_NO_COMMAND = "no_command"  # no default categories and no command received yet
DROP_ERROR = "error"  # inference or message building raised (logged)


class LatestFrameSlot:
    """Hands the inference worker the newest frame; never builds a backlog.

    Frames that arrive while the worker is busy wait here (at most `capacity`); `take` returns
    the newest and drops the older ones, except that a frame whose stamp matches `stamp_ns`
    (a visual prompt's frame) is returned first. Frames older than `max_frame_age_ms` (time
    since receipt) are dropped. Every drop is counted in `stats` with its reason.
    """

    CAPACITY = 8  # frames kept while the worker is busy: enough to find a visual prompt's frame

    def __init__(self, stats: StreamStats, max_frame_age_ms: float = 500.0, capacity: int = CAPACITY,
                 clock: Callable[[], int] = time.monotonic_ns, condition: threading.Condition | None = None):
        """condition: shared by several slots, so that one worker waits for a frame from any of them
        (cameras.CameraSet); its lock must be reentrant (threading.Condition's default)."""
        self._stats = stats
        self._max_age_ns = int(max_frame_age_ms * 1e6)
        self._clock = clock
        self._frames: deque[Frame] = deque()
        self._capacity = capacity
        self._cond = condition or threading.Condition()
        self._closed = False

    def put(self, frame: Frame) -> None:
        """Offer a received frame (already counted as received by the caller)."""
        with self._cond:
            if self._closed:
                self._stats.count_dropped(DROP_SHUTDOWN)
                return
            self._frames.append(frame)
            if len(self._frames) > self._capacity:
                self._frames.popleft()
                self._stats.count_dropped(DROP_SUPERSEDED)
            self._cond.notify()

    def take(self, timeout_s: float | None = None, stamp_ns: int | None = None) -> Frame | None:
        """Wait up to `timeout_s` for a frame and return it, or None (timeout or closed)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while True:
                self._drop_stale()
                if self._frames or self._closed:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if not self._frames:
                return None
            index = len(self._frames) - 1
            if stamp_ns is not None:
                index = next((i for i, f in enumerate(self._frames) if f.stamp_ns == stamp_ns), index)
            chosen = self._frames[index]
            # frames before the chosen one are superseded; newer ones (after a prompt's frame) stay
            for _ in range(index + 1):
                self._frames.popleft()
            if index:
                self._stats.count_dropped(DROP_SUPERSEDED, index)
            return chosen

    def close(self) -> None:
        """Wake a waiting `take`; frames still waiting are dropped as "shutdown"."""
        with self._cond:
            self._closed = True
            if self._frames:
                self._stats.count_dropped(DROP_SHUTDOWN, len(self._frames))
                self._frames.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)

    def _drop_stale(self) -> None:
        if self._max_age_ns <= 0:
            return
        now = self._clock()
        while self._frames and now - self._frames[0].received_ns > self._max_age_ns:
            self._frames.popleft()
            self._stats.count_dropped(DROP_STALE)
