"""`hyperseg_bag record`: a small rosbag2 recorder (there is no `ros2 bag` on PyPI).

Subscribes to topics as raw CDR (`raw=True`), so messages are written exactly as received, with the
receive time (ns since the epoch) as bag time. Topic types come from the graph, so the recorder may
start before the publisher and waits (bounded) for it to appear.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.executors import ExternalShutdownException

from hyperseg_ros.bag.graph import ros_node, spin_until, stop_on_signals, topic_type
from hyperseg_ros.bag.storage import BagWriter, message_class
from hyperseg_ros.qos import reliable

log = logging.getLogger("hyperseg_bag.record")


@dataclass
class RecordStats:
    """Messages written per topic, and topics that never appeared."""

    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


class Recorder:
    """Raw subscriptions on `topics` of an existing node; every message goes to `sink(topic, t_ns, cdr)`.

    Call `poll()` while spinning: it subscribes to topics as soon as their type is known.
    """

    def __init__(self, node, topics: Iterable[str], sink: Callable[[str, str, int, bytes], None],
                 depth: int = 100):
        self.node = node
        self.sink = sink
        self.pending = [node.resolve_topic_name(t) for t in topics]
        self.types: dict[str, str] = {}
        self.qos = reliable(depth)
        self.counts: dict[str, int] = {}
        self.subscriptions = []
        self.last_message = 0.0  # time.monotonic() of the last message

    def poll(self) -> bool:
        """Subscribe to topics that have appeared; True once all are subscribed."""
        for topic in list(self.pending):
            msgtype = topic_type(self.node, topic)
            if msgtype is None:
                continue
            self.subscriptions.append(self.node.create_subscription(
                message_class(msgtype), topic, self._callback(topic, msgtype), self.qos, raw=True))
            self.types[topic] = msgtype
            self.counts[topic] = 0
            self.pending.remove(topic)
        return not self.pending

    def matched(self) -> bool:
        """Every topic subscribed and its subscription matched to a publisher: from now on nothing is missed."""
        return not self.pending and all(sub.get_publisher_count() > 0 for sub in self.subscriptions)

    def _callback(self, topic: str, msgtype: str):
        def received(data: bytes) -> None:
            self.counts[topic] += 1
            self.last_message = time.monotonic()
            self.sink(topic, msgtype, time.time_ns(), data)

        return received


def record(path, topics: list[str], storage: str = "mcap", wait_s: float = 60.0, count: int | None = None,
           count_topic: str | None = None, idle_timeout_s: float | None = None,
           max_duration_s: float | None = None, ready_file=None) -> RecordStats:
    """Record `topics` into a new bag at `path` until a stop condition (or SIGINT/SIGTERM).

    wait_s: bounded wait for every topic to appear. count: stop after this many messages on
    `count_topic` (default the first topic). idle_timeout_s: stop when nothing arrived for this long
    after the first message. max_duration_s: hard limit after all topics are subscribed.
    ready_file: created once every topic's subscription is matched to a publisher, so that a script
    can start the stream only when nothing of it can be missed.
    """
    with BagWriter(path, storage) as writer, ros_node("hyperseg_bag_recorder") as (node, executor), \
            stop_on_signals() as stop:
        def sink(topic, msgtype, stamp, data):
            writer.add_topic(topic, msgtype)
            writer.write(topic, stamp, data)

        rec = Recorder(node, topics, sink)
        spin_until(executor, lambda: (rec.poll() and rec.matched()) or stop.is_set(), wait_s, step_s=0.1)
        if ready_file is not None and rec.matched():
            Path(ready_file).touch()
        if rec.pending:
            log.warning("never appeared: %s", ", ".join(rec.pending))
        counted = node.resolve_topic_name(count_topic or topics[0])
        started = time.monotonic()

        def done() -> bool:
            now = time.monotonic()
            if rec.pending:
                rec.poll()
            return (stop.is_set()
                    or (count is not None and rec.counts.get(counted, 0) >= count)
                    or (idle_timeout_s is not None and rec.last_message > 0 and now - rec.last_message > idle_timeout_s)
                    or (max_duration_s is not None and now - started > max_duration_s))

        try:
            spin_until(executor, done, float("inf"), step_s=0.1)
        except ExternalShutdownException:
            pass
        return RecordStats(counts=dict(writer.counts), missing=list(rec.pending))
