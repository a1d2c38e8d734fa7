#!/usr/bin/env python3
"""Benchmark several cameras: N cameras served by one node (one model) against N separate nodes.

Each camera gets 640x480 rgb8 moving-disc frames at --rate-hz on `cam<i>/image` (the node's
default task: open vocabulary over the model's default categories). Per configuration, the
median over --repeats runs of: each camera's processed frames/s and receive-to-publish latency
p50 / p99, the total frames/s, and the node processes' resident memory (peak, summed). Then, per
N > 1: the one node's total fps over one camera's (batching must not lose throughput), its
memory over the N separate nodes', and the smallest camera's share of the total. One JSON object.

    .venv/bin/python -P scripts/bench_cameras.py --cameras 1,2,4 --seconds 15 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import rclpy  # noqa: E402
from bench_node import bench_env, frame  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from hyperseg_ros.msg import Segmentation  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from hyperseg_ros.image_codec import rgb_to_image  # noqa: E402
from hyperseg_ros.qos import image_qos, reliable  # noqa: E402


def _node_cmd(names: list[str], node_name: str, num_threads: int) -> list[str]:
    return [sys.executable, "-P", "-m", "hyperseg_ros.perception_node", "--ros-args",
            "--params-file", str(ROOT / "config" / "perception.yaml"), "-r", f"__node:={node_name}",
            "-p", f"cameras:=[{','.join(names)}]", "-p", "publish_overlay:=false",
            "-p", f"num_threads:={num_threads}"]


def run_once(args, env: dict, log_dir: Path, n: int, separate: bool) -> dict:
    """n cameras, in one node or (separate) one node each: per camera fps and latency, total, RSS."""
    names = [f"cam{i}" for i in range(n)]
    groups = [[name] for name in names] if separate else [names]
    procs = [subprocess.Popen(_node_cmd(g, f"hyperseg_bench_{i}", args.num_threads), env=env, cwd=ROOT,
                              stdout=open(log_dir / f"node{i}.log", "wb"), stderr=subprocess.STDOUT)
             for i, g in enumerate(groups)]
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("hyperseg_bench_cameras", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    answers: dict[str, list[Segmentation]] = {name: [] for name in names}
    for name in names:
        node.create_subscription(Segmentation, f"{name}/segmentation", answers[name].append, reliable(100))
    pubs = [node.create_publisher(Image, f"{name}/image", image_qos("best_effort")) for name in names]
    peak_rss = 0.0
    try:
        deadline = time.monotonic() + 300
        while any(p.get_subscription_count() == 0 for p in pubs):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError(f"a node did not come up; see {log_dir}")
            executor.spin_once(timeout_sec=0.1)
        frames = [frame(i, args.height, args.width) for i in range(64)]
        period, start, i = 1.0 / args.rate_hz, time.monotonic(), 0
        warmup_end = start + args.warmup_s
        end = warmup_end + args.seconds
        counted_from = None
        while time.monotonic() < end:
            now_ns = time.time_ns()
            for k, pub in enumerate(pubs):  # each camera its own view: the disc a step apart
                image = rgb_to_image(frames[(i + 7 * k) % len(frames)])
                image.header.stamp = Time(sec=now_ns // 1_000_000_000, nanosec=now_ns % 1_000_000_000)
                image.header.frame_id = names[k]
                pub.publish(image)
            i += 1
            if counted_from is None and time.monotonic() >= warmup_end:
                counted_from = {name: len(a) for name, a in answers.items()}
            if i % 15 == 0:
                peak_rss = max(peak_rss, sum(psutil.Process(p.pid).memory_info().rss for p in procs) / 2**20)
            while (remaining := start + i * period - time.monotonic()) > 0:
                executor.spin_once(timeout_sec=remaining)
        measured_s = time.monotonic() - warmup_end
        settle = time.monotonic() + 2
        while time.monotonic() < settle:
            executor.spin_once(timeout_sec=0.1)
        cameras = {}
        for name in names:
            window = answers[name][counted_from[name]:]
            latency = [m.latency_ms for m in window]
            cameras[name] = {"processed_fps": len(window) / measured_s,
                             "latency_p50_ms": float(np.percentile(latency, 50)) if latency else None,
                             "latency_p99_ms": float(np.percentile(latency, 99)) if latency else None}
        return {"cameras": cameras, "total_fps": sum(c["processed_fps"] for c in cameras.values()),
                "rss_MiB": peak_rss}
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def _median_run(runs: list[dict]) -> dict:
    names = list(runs[0]["cameras"])
    med = lambda values: statistics.median(v for v in values if v is not None)  # noqa: E731
    return {"cameras": {name: {k: med(r["cameras"][name][k] for r in runs) for k in runs[0]["cameras"][name]}
                        for name in names},
            "total_fps": med(r["total_fps"] for r in runs), "rss_MiB": med(r["rss_MiB"] for r in runs),
            "min_camera_share": med(min(c["processed_fps"] for c in r["cameras"].values()) / r["total_fps"]
                                    for r in runs)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", default="1,2,4", help="comma-separated camera counts")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup-s", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate-hz", type=float, default=30.0, help="frames per second per camera")
    parser.add_argument("--num-threads", type=int, default=0, help="torch threads per node (0 = default)")
    parser.add_argument("--no-separate", action="store_true", help="skip the N separate nodes")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    args = parser.parse_args()
    counts = [int(c) for c in args.cameras.split(",")]

    env = bench_env("78")
    configs = [(n, False) for n in counts] + [(n, True) for n in counts if n > 1 and not args.no_separate]
    runs: dict[str, list[dict]] = {}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_cameras_") as tmp:
        env["ROS_LOG_DIR"] = os.environ["ROS_LOG_DIR"] = tmp
        for _ in range(args.repeats):
            for n, separate in configs:  # in turn, so that the machine's load hits each alike
                key = f"{n} cameras, {'separate nodes' if separate else 'one node'}"
                runs.setdefault(key, []).append(run_once(args, env, Path(tmp), n, separate))
    median = {key: _median_run(r) for key, r in runs.items()}
    one = median.get("1 cameras, one node")
    ratios = {}
    for n in counts:
        shared, separate = median.get(f"{n} cameras, one node"), median.get(f"{n} cameras, separate nodes")
        if n == 1 or shared is None:
            continue
        ratios[f"{n} cameras"] = {
            "total_fps_over_one_camera": shared["total_fps"] / one["total_fps"] if one else None,
            "total_fps_over_separate_nodes": shared["total_fps"] / separate["total_fps"] if separate else None,
            "rss_over_separate_nodes": shared["rss_MiB"] / separate["rss_MiB"] if separate else None,
            "min_camera_share": shared["min_camera_share"]}
    print(json.dumps({"benchmark": "cameras", "image": f"{args.width}x{args.height} rgb8",
                      "rate_hz_per_camera": args.rate_hz, "seconds_per_run": args.seconds, "repeats": args.repeats,
                      "cpu_count": os.cpu_count(), "load_average_start": [round(x, 2) for x in load_start],
                      "load_average_end": [round(x, 2) for x in os.getloadavg()],
                      "median": median, "ratios": ratios, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
