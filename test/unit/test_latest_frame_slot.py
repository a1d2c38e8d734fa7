"""LatestFrameSlot and StreamStats: latest frame wins, stale frames dropped, every frame counted."""
import threading

import pytest

from hyperseg_ros.stream import DROP_SHUTDOWN, DROP_STALE, DROP_SUPERSEDED, Frame, LatestFrameSlot, StreamStats


class Clock:
    """A settable monotonic clock in ns (frame ages without sleeping)."""

    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def _frames(slot, stats, clock, stamps):
    for s in stamps:
        stats.count_received()
        slot.put(Frame(payload=f"img{s}", stamp_ns=s, frame_id="cam", received_ns=clock()))


def test_newest_frame_wins_and_older_ones_are_counted_as_superseded():
    stats, clock = StreamStats(), Clock()
    slot = LatestFrameSlot(stats, max_frame_age_ms=0, capacity=4, clock=clock)
    _frames(slot, stats, clock, range(1, 11))  # 10 frames while the worker is busy
    frame = slot.take(timeout_s=0)
    assert frame.stamp_ns == 10 and len(slot) == 0
    stats.count_processed(latency_ms=5.0)
    snap = stats.snapshot()
    assert snap.dropped == {DROP_SUPERSEDED: 9}
    assert snap.received == snap.processed + sum(snap.dropped.values()) and snap.in_flight == 0


def test_frames_older_than_max_age_are_dropped_as_stale():
    stats, clock = StreamStats(), Clock()
    slot = LatestFrameSlot(stats, max_frame_age_ms=100, clock=clock)
    _frames(slot, stats, clock, [1])
    clock.now += 150_000_000
    assert slot.take(timeout_s=0) is None
    assert stats.snapshot().dropped == {DROP_STALE: 1}
    _frames(slot, stats, clock, [2])
    clock.now += 50_000_000
    assert slot.take(timeout_s=0).stamp_ns == 2


def test_a_visual_prompts_frame_is_taken_first_and_newer_frames_stay():
    stats, clock = StreamStats(), Clock()
    slot = LatestFrameSlot(stats, max_frame_age_ms=0, clock=clock)
    _frames(slot, stats, clock, [1, 2, 3, 4])
    assert slot.take(timeout_s=0, stamp_ns=2).stamp_ns == 2
    assert stats.snapshot().dropped == {DROP_SUPERSEDED: 1}  # frame 1
    assert slot.take(timeout_s=0, stamp_ns=99).stamp_ns == 4  # no match: newest
    assert stats.snapshot().dropped == {DROP_SUPERSEDED: 2}  # and frame 3


def test_take_waits_for_a_frame_from_another_thread():
    stats = StreamStats()
    slot = LatestFrameSlot(stats)
    timer = threading.Timer(0.05, lambda: slot.put(Frame("img", 7, "cam")))
    timer.start()
    assert slot.take(timeout_s=10).stamp_ns == 7
    timer.join()


def test_close_wakes_the_worker_and_drops_waiting_frames():
    stats, clock = StreamStats(), Clock()
    slot = LatestFrameSlot(stats, max_frame_age_ms=0, clock=clock)
    _frames(slot, stats, clock, [1, 2])
    slot.close()
    assert slot.take(timeout_s=10) is None
    slot.put(Frame("late", 3, "cam"))
    assert stats.snapshot().dropped == {DROP_SHUTDOWN: 3}


def test_stats_latency_percentiles_and_rate():
    t = [0.0]
    stats = StreamStats(window=100, clock=lambda: t[0])
    for i in range(1, 101):
        t[0] = i * 0.1
        stats.count_received()
        stats.count_processed(latency_ms=float(i))
    stats.count_received()
    stats.count_rejected("encoding")
    stats.count_command()
    stats.count_command(rejected_reason="empty text")
    snap = stats.snapshot()
    assert snap.latency_p50_ms == pytest.approx(50.5)
    assert snap.latency_p99_ms == pytest.approx(99.01)
    assert snap.processed_per_s == pytest.approx(10.0)
    assert snap.rejected == {"encoding": 1} and snap.in_flight == 0
    assert (snap.commands_received, snap.commands_rejected) == (2, {"empty text": 1})
