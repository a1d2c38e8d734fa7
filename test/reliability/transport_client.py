"""A camera-like client in its own process: publishes 640x480 rgb8 images to the node one at a time
and counts how many the node received (its /diagnostics `frames_received`), so transport loss is
told apart from inference. The Fast DDS profile is whatever this process's environment says:
run it with and without FASTDDS_DEFAULT_PROFILES_FILE to compare.

    python -P test/reliability/transport_client.py --requests 60 --namespace /robot
prints one JSON line: {"requests": N, "delivered": K, "profile": ..., "seconds": ...}.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from hyperseg_ros.msg import Segmentation
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from hyperseg_ros.image_codec import rgb_to_image
from hyperseg_ros.qos import image_qos, reliable


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--namespace", default="/robot")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--best-effort", action="store_true", help="publish best effort (default reliable)")
    parser.add_argument("--answers", action="store_true", help="wait for each answer (the node runs the model)")
    parser.add_argument("--timeout-s", type=float, default=3.0, help="per request")
    parser.add_argument("--discovery-timeout-s", type=float, default=180.0)
    args = parser.parse_args()

    rclpy.init()
    node = rclpy.create_node("transport_probe", namespace=args.namespace)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    qos = image_qos("best_effort") if args.best_effort else reliable(10)
    pub = node.create_publisher(Image, "image", qos)
    received: list[int] = []

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if "frames_received" in values:
                received.append(int(values["frames_received"]))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, reliable(10))
    answered: set[int] = set()
    node.create_subscription(Segmentation, "segmentation", lambda m: answered.add(m.header.stamp.sec), reliable(100))

    def spin_until(predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            executor.spin_once(timeout_sec=0.02)
        return predicate()

    if not spin_until(lambda: pub.get_subscription_count() > 0 and received, args.discovery_timeout_s):
        raise SystemExit("the node's image subscription and diagnostics never appeared")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    start_count, delivered, lost, started = received[-1], 0, [], time.monotonic()
    for i in range(args.requests):
        msg = rgb_to_image(pixels, header=Header(stamp=Time(sec=1000 + i), frame_id="camera"))
        pub.publish(msg)
        if args.answers:  # an answer proves delivery; the diagnostics count only says how many so far
            if not spin_until(lambda: 1000 + i in answered, args.timeout_s):
                lost.append(i)
        elif spin_until(lambda: received[-1] - start_count > delivered, args.timeout_s):
            delivered = received[-1] - start_count
        else:
            lost.append(i)
    spin_until(lambda: False, 1.0)  # late diagnostics
    delivered = received[-1] - start_count
    print(json.dumps({"requests": args.requests, "delivered": delivered, "answered": len(answered),
                      "lost": lost[:20],
                      "profile": os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "") or "fastdds defaults",
                      "image_bytes": len(msg.data), "reliable": not args.best_effort,
                      "seconds": round(time.monotonic() - started, 1)}))
    node.destroy_node()
    rclpy.shutdown()


if __name__ == "__main__":
    main()
