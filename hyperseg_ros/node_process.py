"""The process around one of this package's nodes: signals, DDS profile, start, spin, close.

`perception_node` and `speech_command` are both lifecycle nodes with `autostart`; they share this
shell so that both end the same way: SIGINT or SIGTERM in any state, start-up included, gives exit
code 0 after the node is closed (then ROS); a failed start gives 1 with one error line.
"""
from __future__ import annotations

import atexit
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

import rclpy
import rclpy.logging
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from hyperseg_ros.fastdds import use_shm_profile
from hyperseg_ros.throttle import printable

SPIN_TIMEOUT_S = 0.2  # how soon a signal is seen while idle (Python runs handlers between waits)


def stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, in every state, start-up
    included, until the returned event is set (the node is being closed: later signals are then
    ignored). rclpy's own handlers are not installed: they shut the context down at once, under a
    model still loading or a frame being published, which then fails with a traceback or an ERROR;
    here the node is closed first, then ROS. Each signal raises again until closing has begun: a
    KeyboardInterrupt swallowed by library code during start-up must not leave the node deaf (launch
    follows SIGINT with SIGTERM)."""
    closing = threading.Event()

    def stop(signum, frame):
        if not closing.is_set():
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # `kill -USR1 <pid>`: every thread's stack on stderr, so a node that does not stop can say where it is
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    return closing


def serve(make_node: Callable[[], object], name: str, args=None, waiting: str = "") -> int:
    """Run the node `make_node()` builds (after rclpy.init) until a signal or ROS shutdown -> exit code.
    The node has `start()` (configure + activate; False when that failed) and `close()`. A ValueError
    from `make_node` is a start-up parameter out of its range: one error line under `name`, code 1.
    `waiting` (formatted with the node's full name) is logged when autostart is off."""
    closing = stop_on_signals()
    use_shm_profile()  # before rclpy creates the DDS participant
    node, code = None, 0
    try:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        try:
            node = make_node()
        except ValueError as err:
            rclpy.logging.get_logger(name).error(printable(f"start-up failed: {err}"))
            return 1
        autostart = node.get_parameter("autostart").value
        if autostart and not node.start():
            node.get_logger().error("autostart failed (see above); exiting")
            code = 1
        else:
            if not autostart and waiting:
                node.get_logger().info(waiting.format(name=node.get_fully_qualified_name()))
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            while rclpy.ok():
                executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        closing.set()
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def end_process(code: int) -> NoReturn:
    """Exit with `code` after the atexit handlers and a flush of stdout and stderr, without the
    interpreter's teardown: with torch and a model loaded it frees every module and object one by
    one (0.7-1.4 s on 2 busy cores), which made a stop signal take over 2 s. serve() has closed
    the node and ROS by then; the process writes no other file."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or gone: nothing left to write
            pass
    os._exit(code)
