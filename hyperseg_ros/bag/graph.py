"""A short-lived rclpy node for the bag tools (player, recorder): its own context, SHM transport.

Each tool owns a `rclpy.Context`, so several can live in one process (tests) and shut down
cleanly; the Fast DDS profile of `hyperseg_ros.fastdds` is applied before the participant exists,
so camera-sized samples travel over a large shared-memory segment.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from hyperseg_ros import fastdds
from hyperseg_ros.bag.storage import message_class


@contextmanager
def ros_node(name: str, args: list[str] | None = None):
    """Yield (node, executor) on a fresh context; always shuts the context down."""
    fastdds.use_shm_profile()
    context = Context()
    rclpy.init(args=args, context=context)
    node = Node(name, context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        yield node, executor
    finally:
        executor.shutdown()
        node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)


@contextmanager
def stop_on_signals():
    """Yield a threading.Event set by SIGINT or SIGTERM (previous handlers restored on exit).

    Enter it after `rclpy.init`: our handler then replaces rclpy's, so a signal ends the tool's
    loop and the bag being written is closed properly. Off the main thread no handler is installed.
    """
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def spin_until(executor, condition, timeout_s: float, step_s: float = 0.02) -> bool:
    """Spin `executor` until `condition()` is true or `timeout_s` passes; returns condition()."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return condition()
        executor.spin_once(timeout_sec=min(step_s, remaining))
    return True


def topic_type(node: Node, topic: str) -> str | None:
    """Type name (`pkg/msg/Name`) of `topic` in the graph, or None while nobody offers it."""
    full = node.resolve_topic_name(topic)
    for name, types in node.get_topic_names_and_types():
        if name == full and types:
            return types[0]
    return None


def wait_for_type(node: Node, executor, topic: str, timeout_s: float) -> type | None:
    """rclpy class of `topic` once it appears in the graph (bounded wait), else None."""
    found: list[str] = []

    def appeared() -> bool:
        name = topic_type(node, topic)
        if name:
            found.append(name)
        return bool(found)

    return message_class(found[0]) if spin_until(executor, appeared, timeout_s, step_s=0.05) else None
