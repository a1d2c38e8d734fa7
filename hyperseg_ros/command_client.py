"""`hyperseg_command`: send the perception node one command and, with --wait, print its answer.

    hyperseg_command "the red circle" --namespace /robot --wait
    hyperseg_command --task visual_prompt --box 40 30 60 50 --wait
    hyperseg_command --task open_vocabulary --categories "circle, star"

A bare sentence goes out as std_msgs/String on `command` (the node's `text_task` decides its
task, and the node assigns its id); --id, --task, --categories, --box or --point make it a
hyperseg_ros/SegmentationCommand on `segmentation_command` with an id (given or made here). It
publishes only once the node subscribes (a message sent before discovery is lost), so it exits 1
with one line when no node subscribes within --timeout. With --wait it prints the first
Segmentation that answers the command (each instance: id, label, score, box) and exits 0, or 3
when none comes within --answer-timeout (the node answers on its next camera frame).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

from rclpy.duration import Duration
from std_msgs.msg import String

from hyperseg_ros.command import TASKS
from hyperseg_ros.qos import reliable

EXIT_NO_NODE, EXIT_NO_ANSWER = 1, 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hyperseg_command", description=__doc__.split("\n")[0])
    p.add_argument("text", nargs="?", default="", help="the sentence (referring / reasoning)")
    p.add_argument("--task", choices=TASKS, help="structured command of this task")
    p.add_argument("--categories", help="open_vocabulary: comma-separated category names")
    p.add_argument("--box", nargs=4, type=float, action="append", default=[], metavar=("X", "Y", "W", "H"),
                   help="visual_prompt: a box in image pixels (repeatable)")
    p.add_argument("--point", nargs=2, type=float, action="append", default=[], metavar=("X", "Y"),
                   help="visual_prompt: a point in image pixels (repeatable)")
    p.add_argument("--id", default="", help="command id, echoed in every answer (default: made here)")
    p.add_argument("--namespace", default="", help="the node's namespace, e.g. /robot")
    p.add_argument("--wait", action="store_true", help="print the first answer to the command, then exit")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the node to subscribe")
    p.add_argument("--answer-timeout", type=float, default=60.0, help="with --wait: seconds to wait for the answer")
    args = p.parse_args(argv)
    if not (args.text or args.categories or args.box or args.point):
        p.error("give a sentence, --categories, --box or --point")
    return args


def is_structured(args: argparse.Namespace) -> bool:
    return bool(args.id or args.task or args.categories or args.box or args.point)


def build_message(args: argparse.Namespace):
    """-> (topic, message): String on `command`, or SegmentationCommand (with an id) on `segmentation_command`."""
    if not is_structured(args):
        return "command", String(data=args.text)
    from geometry_msgs.msg import Point
    from sensor_msgs.msg import RegionOfInterest

    from hyperseg_ros.msg import SegmentationCommand

    task = args.task or ("open_vocabulary" if args.categories else
                         "visual_prompt" if args.box or args.point else "referring")
    msg = SegmentationCommand(id=args.id or f"cli-{uuid.uuid4().hex[:8]}", task=task, text=args.text)
    msg.categories = [c.strip() for c in (args.categories or "").split(",") if c.strip()]
    msg.boxes = [RegionOfInterest(x_offset=round(x), y_offset=round(y), width=round(w), height=round(h))
                 for x, y, w, h in args.box]
    msg.points = [Point(x=x, y=y) for x, y in args.point]
    return "segmentation_command", msg


def answers(seg, message, ids_before: set[str]) -> bool:
    """Does Segmentation `seg` answer `message`? A structured command by its id; a sentence by a new
    id (one not seen before sending) carrying that sentence (or its categories, for open vocabulary)."""
    if isinstance(message, String):
        said = message.data.strip()
        return seg.command_id not in ids_before and (
            seg.text.strip() == said or ", ".join(seg.categories) == ", ".join(c.strip() for c in said.split(",")))
    return seg.command_id == message.id


def describe_answer(seg) -> list[str]:
    """Lines for one Segmentation: the command and frame, then one line per instance."""
    stamp = f"{seg.header.stamp.sec}.{seg.header.stamp.nanosec:09d}"
    lines = [f"answer to {seg.command_id} ({seg.task}) on the frame stamped {stamp} ({seg.width}x{seg.height}): "
             f"{len(seg.instances)} instance(s), {seg.latency_ms:.0f} ms in the node"]
    for inst in seg.instances:
        b = inst.bbox
        lines.append(f"  #{inst.id} {inst.label!r} score {inst.score:.2f} box x={b.x_offset} y={b.y_offset} "
                     f"w={b.width} h={b.height}")
    return lines


def run(args: argparse.Namespace) -> int:
    from hyperseg_ros.bag.graph import ros_node, spin_until
    from hyperseg_ros.msg import Segmentation

    topic, message = build_message(args)
    ros_args = ["--ros-args", "-r", f"__ns:={args.namespace}"] if args.namespace else None
    with ros_node("hyperseg_command", args=ros_args) as (node, executor):
        pub = node.create_publisher(type(message), topic, reliable(10))
        seen: list = []
        if args.wait:
            sub = node.create_subscription(Segmentation, "segmentation", seen.append, reliable(10))
        full_topic = pub.topic_name
        ready = (lambda: pub.get_subscription_count() > 0 and sub.get_publisher_count() > 0) if args.wait \
            else (lambda: pub.get_subscription_count() > 0)
        if not spin_until(executor, ready, args.timeout):
            domain = os.environ.get("ROS_DOMAIN_ID", "0")
            print(f"hyperseg_command: no node subscribes to {full_topic} within {args.timeout:g} s "
                  f"(ROS_DOMAIN_ID={domain}); is the perception node running, configured, in this namespace?",
                  file=sys.stderr)
            return EXIT_NO_NODE
        executor.spin_once(timeout_sec=0.05)
        ids_before = {s.command_id for s in seen}
        del seen[:]
        pub.publish(message)
        pub.wait_for_all_acked(Duration(seconds=args.timeout))  # delivered before the process ends
        if isinstance(message, String):
            print(f"sent {message.data!r} on {full_topic} (std_msgs/String; the node assigns the id)", flush=True)
        else:
            print(f"sent command {message.id} ({message.task}) on {full_topic}", flush=True)
        if not args.wait:
            return 0
        deadline = time.monotonic() + args.answer_timeout
        while time.monotonic() < deadline:
            found = next((s for s in seen if answers(s, message, ids_before)), None)
            if found is not None:
                print("\n".join(describe_answer(found)), flush=True)
                return 0
            executor.spin_once(timeout_sec=0.1)
        print(f"hyperseg_command: no answer within {args.answer_timeout:g} s (the node answers on its next "
              "camera frame: is an image arriving?)", file=sys.stderr)
        return EXIT_NO_ANSWER


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
