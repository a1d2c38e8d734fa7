"""`hyperseg_bag play`: publish a bag's messages into the live ROS graph with their original timing.

Messages go out as the CDR bytes stored in the bag (`publish(bytes)`), so nothing is decoded and
re-encoded. Publishers are reliable (a reliable writer also serves best-effort readers). With
`lockstep_topic`, each image waits for one message on that topic (the node's `segmentation`) before
the clock moves on, and each command waits until the node acknowledged it: a slow node then sees
every frame, in the bag's order, as `hyperseg_bag process` does. With `speech_topic` too, a run of
audio chunks is followed by a wait for one message there (the speech node's transcript), so a spoken
command reaches the node before the frame after it, as it would have in real time.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException

from hyperseg_ros.bag import storage
from hyperseg_ros.bag.graph import ros_node, spin_until, stop_on_signals, wait_for_type
from hyperseg_ros.qos import RELIABLE_10, reliable

log = logging.getLogger("hyperseg_bag.play")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
AUDIO_TYPE = "hyperseg_ros/msg/AudioChunk"


@dataclass
class PlayStats:
    """What a play run did: messages published per topic, publish failures, lockstep timeouts."""

    published: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    unanswered: int = 0  # images (or runs of audio) whose lockstep answer did not come in time
    unmatched: list[str] = field(default_factory=list)  # topics nobody subscribed to at start


def play(path, rate: float = 1.0, loop: bool = False, topics: Iterable[str] | None = None,
         wait_for_subscribers_s: float = 10.0, lockstep_topic: str | None = None,
         lockstep_timeout_s: float = 30.0, speech_topic: str | None = None) -> PlayStats:
    """Publish the bag at `path` until its end (or until SIGINT/SIGTERM with `loop`).

    rate: time scale (2.0 plays twice as fast). topics: bag topic names to publish (default all).
    wait_for_subscribers_s: bounded wait until every publisher has a subscriber (and, with
    lockstep, until `lockstep_topic` exists) before starting. speech_topic: with lockstep, where an
    utterance's answer is awaited after a run of audio chunks.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0")
    conns = storage.connections(path)
    if topics is not None:
        wanted = {_absolute(t) for t in topics}
        conns = [c for c in conns if _absolute(c.topic) in wanted]
    with ros_node("hyperseg_bag_player") as (node, executor), stop_on_signals() as stop:
        player = _Player(node, executor, stop, conns, rate, lockstep_timeout_s)
        if lockstep_topic:
            player.follow(lockstep_topic, wait_for_subscribers_s)
            if speech_topic and any(c.msgtype == AUDIO_TYPE for c in conns):
                player.follow_speech(speech_topic, wait_for_subscribers_s)
        player.wait_for_subscribers(wait_for_subscribers_s)
        try:
            while not stop.is_set():
                player.play_once(path)
                if not loop:
                    break
            if not stop.is_set():  # reliable samples still in flight when the context closes are lost
                for pub in player.pubs.values():
                    pub.wait_for_all_acked(Duration(seconds=5))
        except ExternalShutdownException:
            pass
        return player.stats


class _Player:
    def __init__(self, node, executor, stop, conns, rate: float, lockstep_timeout_s: float):
        self.executor, self.stop, self.rate, self.lockstep_timeout_s = executor, stop, rate, lockstep_timeout_s
        self.node = node
        self.pubs = {c.topic: node.create_publisher(storage.message_class(c.msgtype), _absolute(c.topic), RELIABLE_10)
                     for c in conns}
        self.stats = PlayStats(published=dict.fromkeys(self.pubs, 0))
        self.lockstep = False
        self.answers = 0
        self.heard: int | None = None  # messages on the speech topic, when it is followed
        self._audio_run: int | None = None  # `heard` when the current run of audio chunks began

    def follow(self, topic: str, timeout_s: float) -> None:
        """Lockstep on `topic`: subscribe once it exists (bounded wait)."""
        cls = wait_for_type(self.node, self.executor, topic, timeout_s)
        if cls is None:
            raise RuntimeError(f"lockstep topic {topic} did not appear within {timeout_s} s")
        self.node.create_subscription(cls, topic, self._answered, reliable(100), raw=True)
        self.lockstep = True

    def _answered(self, _data: bytes) -> None:
        self.answers += 1

    def follow_speech(self, topic: str, timeout_s: float) -> None:
        """After each run of audio chunks, wait for one message on `topic` (bounded wait for it to exist)."""
        cls = wait_for_type(self.node, self.executor, topic, timeout_s)
        if cls is None:
            raise RuntimeError(f"speech topic {topic} did not appear within {timeout_s} s")
        self.heard = 0
        self.node.create_subscription(cls, topic, self._heard, reliable(100), raw=True)

    def _heard(self, _data: bytes) -> None:
        self.heard += 1

    def _wait_for_speech(self) -> None:
        """The audio run just ended: wait until its utterance was answered."""
        before, self._audio_run = self._audio_run, None
        if not spin_until(self.executor, lambda: self.heard > before or self.stop.is_set(), self.lockstep_timeout_s):
            self.stats.unanswered += 1

    def wait_for_subscribers(self, timeout_s: float) -> None:
        spin_until(self.executor,
                   lambda: self.stop.is_set() or all(p.get_subscription_count() for p in self.pubs.values()), timeout_s)
        self.stats.unmatched = sorted(t for t, p in self.pubs.items() if p.get_subscription_count() == 0)
        if self.stats.unmatched:
            log.warning("no subscriber on %s; playing anyway", ", ".join(self.stats.unmatched))

    def play_once(self, path) -> None:
        """The whole bag once, on a clock that starts at its first message."""
        start_wall, start_bag = None, 0
        for record in storage.read(path, self.pubs):
            if self.stop.is_set():
                return
            if start_wall is None:
                start_wall, start_bag = time.monotonic(), record.timestamp
            audio = record.msgtype == AUDIO_TYPE
            if self._audio_run is not None and not audio:
                waited = time.monotonic()
                self._wait_for_speech()
                start_wall += time.monotonic() - waited
            due = start_wall + (record.timestamp - start_bag) / 1e9 / self.rate
            while (left := due - time.monotonic()) > 0 and not self.stop.is_set():
                self.executor.spin_once(timeout_sec=min(left, 0.1))
            if self._publish(record) and self.lockstep:
                if audio:
                    if self.heard is not None and self._audio_run is None:
                        self._audio_run = self.heard
                    continue
                waited = time.monotonic()
                self._wait_for_node(record)
                start_wall += time.monotonic() - waited  # waiting does not eat into the bag's timeline
        if self._audio_run is not None:  # the bag ended on audio
            self._wait_for_speech()

    def _publish(self, record: storage.Record) -> bool:
        try:
            self.pubs[record.topic].publish(record.data)
        except Exception as err:  # noqa: BLE001 - RCLError when the writer's queue is full (G10)
            self.stats.failed += 1
            log.warning("publish on %s failed: %s", record.topic, err)
            return False
        self.stats.published[record.topic] += 1
        return True

    def _wait_for_node(self, record: storage.Record) -> None:
        if record.msgtype in IMAGE_TYPES:
            before = self.answers
            if not spin_until(self.executor, lambda: self.answers > before or self.stop.is_set(),
                              self.lockstep_timeout_s):
                self.stats.unanswered += 1
        else:  # a command must reach the node before the next image does
            self.pubs[record.topic].wait_for_all_acked(Duration(seconds=self.lockstep_timeout_s))


def _absolute(topic: str) -> str:
    return topic if topic.startswith("/") else "/" + topic
