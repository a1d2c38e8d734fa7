"""rosbag2 files (sqlite3 or MCAP) read and written with `rosbags`, messages as real rclpy objects.

rosbags knows the standard ROS 2 (Kilted) types; ours are registered from `msg/*.msg`, so the
type hashes (RIHS01) written into a bag are the ones rosidl computes for the built package.
Serialization goes through rclpy (`serialize_message` / `deserialize_message`), so what is in a bag
is byte-for-byte what a ROS publisher sends.
"""
from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from hyperseg_ros import resources

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
PACKAGE = "hyperseg_ros"


def msg_dir() -> Path:
    """The package's `msg/` folder: the source tree's, else the installed `share/hyperseg_ros/msg`."""
    return resources.find("msg")


@functools.cache
def typestore() -> Typestore:
    """rosbags typestore of ROS 2 Kilted plus `hyperseg_ros/msg/*` from the .msg definitions."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


@functools.cache
def message_class(msgtype: str) -> type:
    """rclpy class of a ROS type name such as `sensor_msgs/msg/Image` (or `sensor_msgs/Image`)."""
    parts = msgtype.split("/")
    package, name = parts[0], parts[-1]
    return getattr(importlib.import_module(f"{package}.msg"), name)


def stamp_ns(header) -> int:
    """Nanoseconds since the epoch of a `std_msgs/Header` (or a `builtin_interfaces/Time`)."""
    stamp = getattr(header, "stamp", header)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass(frozen=True)
class Record:
    """One message of a bag: topic, type name, bag (receive) time in ns, CDR bytes."""

    topic: str
    msgtype: str
    timestamp: int
    data: bytes

    def message(self):
        """The rclpy message object."""
        return deserialize_message(self.data, message_class(self.msgtype))


def topics(path: str | Path) -> dict[str, str]:
    """{topic: type name} of the bag at `path`."""
    with Reader(path) as reader:
        return {c.topic: c.msgtype for c in reader.connections}


def message_counts(path: str | Path) -> dict[str, int]:
    """{topic: number of messages} of the bag at `path`."""
    with Reader(path) as reader:
        return {c.topic: c.msgcount for c in reader.connections}


def read(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[Record]:
    """Messages of the bag at `path` in bag-time order, optionally only `topics`."""
    with Reader(path) as reader:
        wanted = set(topics) if topics is not None else None
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for conn, timestamp, data in reader.messages(connections=conns):
            yield Record(conn.topic, conn.msgtype, int(timestamp), bytes(data))


def connections(path: str | Path):
    """rosbags connections (topic, msgtype, msgdef, digest, qos) of the bag at `path`."""
    with Reader(path) as reader:
        return list(reader.connections)


class BagWriter:
    """A rosbag2 writer taking rclpy messages or CDR bytes; use as a context manager.

    storage: "mcap" (default) or "sqlite3". Topics are added on first write with the type hash
    from `typestore()`, or copied from an input bag's connection with `add_topic(..., like=conn)`.
    """

    def __init__(self, path: str | Path, storage: str = "mcap"):
        if storage not in STORAGES:
            raise ValueError(f"unknown storage {storage!r}; expected one of {', '.join(STORAGES)}")
        self.path = Path(path)
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[storage])
        self._conns: dict[str, object] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()

    def add_topic(self, topic: str, msgtype: str, like=None) -> None:
        """Declare `topic`; `like` is a rosbags Connection whose definition and hash are kept."""
        if topic in self._conns:
            return
        if like is not None and like.digest:
            conn = self._writer.add_connection(
                topic, msgtype, msgdef=like.msgdef.data, rihs01=like.digest,
                offered_qos_profiles=like.ext.offered_qos_profiles)
        else:
            conn = self._writer.add_connection(topic, _long_name(msgtype), typestore=typestore())
        self._conns[topic] = conn
        self.counts[topic] = 0

    def write(self, topic: str, timestamp: int, msg) -> None:
        """Write an rclpy message (its type names the topic's type) or CDR bytes to a declared topic."""
        if not isinstance(msg, (bytes, bytearray, memoryview)):
            if topic not in self._conns:
                self.add_topic(topic, type_name(msg))
            msg = serialize_message(msg)
        self._writer.write(self._conns[topic], int(timestamp), bytes(msg))
        self.counts[topic] += 1


def type_name(msg) -> str:
    """`package/msg/Name` of an rclpy message object."""
    module = type(msg).__module__.split(".")[0]
    return f"{module}/msg/{type(msg).__name__}"


def _long_name(msgtype: str) -> str:
    parts = msgtype.split("/")
    return msgtype if len(parts) == 3 else f"{parts[0]}/msg/{parts[-1]}"
