#!/usr/bin/env python3
"""Benchmark the perception node as a robot sees it: 640x480 rgb8 frames at 30 Hz over Fast DDS.

Starts `python -m hyperseg_ros.perception_node` in its own process (ROS_DOMAIN_ID: yours, else 77; localhost
discovery, the shipped shared-memory profile), publishes moving-disc frames for --seconds, and
prints one JSON object: processed frames/s, the node's receive-to-publish latency (its
`latency_ms` field) and the end-to-end latency (answer received minus frame stamp), as medians
over --repeats runs, plus the node's own frame accounting from /diagnostics and, per task, where a
frame's time went in the node (its stage_<stage>_mean_ms: wait in the slot, decode, the model's
stages, message, publish). With --tasks, each
run measures each task in turn (a SegmentationCommand, a warm-up, then the measured window).

    .venv/bin/python -P scripts/bench_node.py --model-path models/hyperseg-world --seconds 20
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

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from hyperseg_ros.msg import Segmentation, SegmentationCommand  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from sensor_msgs.msg import Image, RegionOfInterest  # noqa: E402

from hyperseg_ros.fastdds import use_shm_profile  # noqa: E402
from hyperseg_ros.image_codec import rgb_to_image  # noqa: E402
from hyperseg_ros.qos import image_qos, reliable  # noqa: E402


def frame(i: int, height: int, width: int) -> np.ndarray:
    """uint8 [H, W, 3]: a red disc crossing a grey background, one step per frame."""
    img = np.full((height, width, 3), 90, np.uint8)
    yy, xx = np.ogrid[:height, :width]
    cx = (width * 0.2 + 4 * i) % width
    img[(yy - height / 2) ** 2 + (xx - cx) ** 2 < (height / 6) ** 2] = (220, 30, 30)
    return img


TASKS = ("default", "referring", "open_vocabulary", "visual_prompt")


def command(task: str, i: int, height: int, width: int) -> SegmentationCommand | None:
    """The command of `task` for the frames from index i on (None: the node's default task); a visual
    prompt boxes the disc of frame i."""
    if task == "default":
        return None
    msg = SegmentationCommand(id=f"bench-{task}", task=task)
    if task == "referring":
        msg.text = "the red circle"
    elif task == "open_vocabulary":
        msg.categories = ["circle", "square", "star"]
    else:
        cx, r = (width * 0.2 + 4 * i) % width, height / 6
        msg.boxes = [RegionOfInterest(x_offset=int(max(0, cx - r)), y_offset=int(height / 2 - r),
                                      width=int(min(2 * r, width - max(0, cx - r))), height=int(2 * r))]
    return msg


def _metrics(window: list, measured_s: float, sent: int) -> dict:
    node_latency = [m.latency_ms for _, m in window]
    e2e = [(t - (m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec)) / 1e6 for t, m in window]

    def pct(values, q):
        return float(np.percentile(values, q)) if window else None

    return {"frames_sent": sent, "frames_processed": len(window), "processed_fps": len(window) / measured_s,
            "node_latency_p50_ms": pct(node_latency, 50), "node_latency_p99_ms": pct(node_latency, 99),
            "end_to_end_p50_ms": pct(e2e, 50), "end_to_end_p99_ms": pct(e2e, 99)}


def bench_env(own_domain: str) -> dict:
    """The environment of a bench's node processes (and, for its own DDS side, of this process):
    the user's ROS_DOMAIN_ID when set, else `own_domain`; localhost discovery; the shipped
    shared-memory profile; this checkout first on the path."""
    env = dict(os.environ)
    domain = env.get("ROS_DOMAIN_ID") or env.get("HYPERSEG_BENCH_DOMAIN_ID", own_domain)
    env.update(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    use_shm_profile(env)
    os.environ.update({k: env[k] for k in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE",
                                           "FASTDDS_DEFAULT_PROFILES_FILE")})
    return env


def _stages(diagnostics: list[DiagnosticArray]) -> dict[str, float]:
    """The node's latest per-stage means (stage_<stage>_mean_ms of its /diagnostics) by stage."""
    if not diagnostics:
        return {}
    values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
    return {k[len("stage_"):-len("_mean_ms")]: float(v) for k, v in values.items()
            if k.startswith("stage_") and k.endswith("_mean_ms")}


def run_once(args, env: dict, log_dir: Path, every_n: int | None = None) -> dict:
    """One node process; per task of args.tasks a warm-up, then a measured window. -> {task: metrics},
    plus the node's frame accounting from /diagnostics."""
    cmd = [sys.executable, "-P", "-m", "hyperseg_ros.perception_node", "--ros-args",
           "--params-file", str(ROOT / "config" / "perception.yaml"),
           "-p", f"device:={args.device}", "-p", f"num_threads:={args.num_threads}", "-p", "publish_overlay:=false"]
    if every_n is not None:
        cmd += ["-p", f"llm_every_n_frames:={every_n}"]
    if args.model_path:  # rcl cannot parse an empty override ("model_path:="); empty = the yaml's default
        cmd += ["-p", f"model_path:={args.model_path}"]
    log = open(log_dir / "node.log", "wb")
    node_proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("hyperseg_bench", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    answers: list[tuple[int, Segmentation]] = []
    diagnostics: list[DiagnosticArray] = []
    node.create_subscription(Segmentation, "segmentation", lambda m: answers.append((time.time_ns(), m)),
                             reliable(100))
    node.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
    pub = node.create_publisher(Image, "image", image_qos("best_effort"))
    command_pub = node.create_publisher(SegmentationCommand, "segmentation_command", reliable(10))
    try:
        deadline = time.monotonic() + 300  # a loaded machine imports torch slowly
        while pub.get_subscription_count() == 0 or command_pub.get_subscription_count() == 0:
            if node_proc.poll() is not None or time.monotonic() > deadline:  # subscribed once the model is loaded
                raise RuntimeError(f"node did not come up; see {log_dir / 'node.log'}")
            executor.spin_once(timeout_sec=0.1)
        frames = [frame(i, args.height, args.width) for i in range(64)]
        period, i, report = 1.0 / args.rate_hz, 0, {}
        for task in args.tasks:
            msg = command(task, i % len(frames), args.height, args.width)
            if msg is not None:
                command_pub.publish(msg)
            start = time.monotonic()
            warmup_end, end = start + args.warmup_s, start + args.warmup_s + args.seconds
            counted_from, first = None, i
            while time.monotonic() < end:
                now_ns = time.time_ns()
                image = rgb_to_image(frames[i % len(frames)])
                image.header.stamp = Time(sec=now_ns // 1_000_000_000, nanosec=now_ns % 1_000_000_000)
                image.header.frame_id = "camera"
                pub.publish(image)
                i += 1
                if counted_from is None and time.monotonic() >= warmup_end:
                    counted_from, measured_start, sent_before = len(answers), time.monotonic(), i
                next_t = start + (i - first) * period
                while (remaining := next_t - time.monotonic()) > 0:  # serve callbacks until the next frame
                    executor.spin_once(timeout_sec=remaining)
            measured_s = time.monotonic() - measured_start
            stages = _stages(diagnostics)  # the node's last 64 frames: this task's
            settle = time.monotonic() + 3
            while time.monotonic() < settle:
                executor.spin_once(timeout_sec=0.1)
            window = [(t, m) for t, m in answers[counted_from:] if m.command_id == (msg.id if msg else "")]
            report[task] = {**_metrics(window, measured_s, i - sent_before), "stages_mean_ms": stages}
        diag = {kv.key: kv.value for kv in diagnostics[-1].status[0].values} if diagnostics else {}
        report["diagnostics"] = {k: v for k, v in diag.items() if k.startswith(("frames_", "dropped_", "rejected_"))}
        return report
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        node_proc.send_signal(signal.SIGINT)
        try:
            node_proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            node_proc.kill()
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", default="", help="model directory (default: the embedded model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-threads", type=int, default=0, help="torch threads in the node (0 = default)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured publishing time per task and run")
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate-hz", type=float, default=30.0)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--llm-every-n-frames", default="",
                        help="comma-separated values to compare, run alternately (default: the yaml's)")
    parser.add_argument("--tasks", default="default", type=lambda t: t.split(","),
                        help=f"comma-separated, measured in turn in each run: {', '.join(TASKS)} (the node's own)")
    args = parser.parse_args()
    if set(args.tasks) - set(TASKS):
        parser.error(f"unknown tasks {set(args.tasks) - set(TASKS)}")
    variants = [int(n) for n in args.llm_every_n_frames.split(",") if n] or [None]

    env = bench_env("77")
    runs = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_node_") as tmp:
        env["ROS_LOG_DIR"] = os.environ["ROS_LOG_DIR"] = tmp
        for _ in range(args.repeats):
            for every_n in variants:  # alternately, so that the machine's load hits each alike
                runs.append({"llm_every_n_frames": every_n or "yaml", **run_once(args, env, Path(tmp), every_n)})

    def median(key, every_n=None, task="default"):
        values = [r[task][key] for r in runs if r[task][key] is not None and r["llm_every_n_frames"] == (every_n or "yaml")]
        return statistics.median(values) if values else None

    def stage_medians(every_n=None, task="default"):
        chosen = [r[task]["stages_mean_ms"] for r in runs if r["llm_every_n_frames"] == (every_n or "yaml")]
        names = sorted({name for stages in chosen for name in stages})
        return {name: statistics.median(s.get(name, 0.0) for s in chosen) for name in names}

    def medians(every_n=None):
        if args.tasks == ["default"]:
            return {**{k: median(k, every_n) for k in keys}, "stages_mean_ms": stage_medians(every_n)}
        return {task: {**{k: median(k, every_n, task) for k in keys}, "stages_mean_ms": stage_medians(every_n, task)}
                for task in args.tasks}

    keys = ("processed_fps", "node_latency_p50_ms", "node_latency_p99_ms", "end_to_end_p50_ms", "end_to_end_p99_ms",
            "frames_sent", "frames_processed")

    print(json.dumps({
        "benchmark": "perception_node",
        "model_path": args.model_path or "embedded",
        "device": args.device,
        "image": f"{args.width}x{args.height} rgb8",
        "publish_rate_hz": args.rate_hz,
        "seconds_per_run": args.seconds,
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "tasks": args.tasks,
        "median": (medians() if variants == [None] else
                   {f"llm_every_n_frames={n}": medians(n) for n in variants}),
        "runs": runs,
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
