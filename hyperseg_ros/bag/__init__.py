"""`hyperseg_bag`: process, play, record and make rosbag2 files (sqlite3 or MCAP) for hyperseg_ros.

    hyperseg_bag process IN OUT [--image-topic T] [--command-topic T] [--params FILE] [--storage S]
    hyperseg_bag play BAG [--rate R] [--loop] [--topics T ...] [--lockstep TOPIC [--lockstep-speech TOPIC]]
    hyperseg_bag record OUT --topics T ... [--count N] [--idle-timeout S]
    hyperseg_bag make-demo OUT [--storage mcap|sqlite3] [--seconds S] [--size WxH] [--encoding E] [--speak VOICE]
    hyperseg_bag report BAG --segmentation-bag SEG [--video out.mp4] [--summary out.json] [--strip out.png]

Sub-commands import what they need (torch only for `process` and `make-demo`), so `play` and
`record` start fast.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def parser() -> argparse.ArgumentParser:
    """The `hyperseg_bag` command line."""
    top = argparse.ArgumentParser(prog="hyperseg_bag", description=__doc__.split("\n")[0])
    top.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings only")
    sub = top.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("process", help="run the node's stream logic over every image of a bag, offline")
    p.add_argument("input", help="input rosbag2 directory (sqlite3 or mcap)")
    p.add_argument("output", help="output rosbag2 directory (must not exist)")
    p.add_argument("--image-topic", help="image topic (default: the only Image/CompressedImage topic)")
    p.add_argument("--command-topic", default="command", help="std_msgs/String commands (default: command)")
    p.add_argument("--segmentation-command-topic", default="segmentation_command",
                   help="hyperseg_ros/SegmentationCommand commands (default: segmentation_command)")
    p.add_argument("--params", help="the node's ros__parameters yaml (config/perception.yaml)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--no-overlay", action="store_true", help="do not write segmentation/overlay")

    p = sub.add_parser("play", help="publish a bag into the live ROS graph with its original timing")
    p.add_argument("bag")
    p.add_argument("--rate", type=float, default=1.0, help="time scale, 2.0 = twice as fast")
    p.add_argument("--loop", action="store_true", help="start over at the end (Ctrl-C stops)")
    p.add_argument("--topics", nargs="+", help="bag topics to publish (default: all)")
    p.add_argument("--wait-for-subscribers", type=float, default=10.0, metavar="S",
                   help="wait at most S seconds for every topic to have a subscriber")
    p.add_argument("--lockstep", metavar="TOPIC",
                   help="after each image wait for one message on TOPIC (e.g. segmentation): no frame dropped")
    p.add_argument("--lockstep-timeout", type=float, default=30.0, metavar="S")
    p.add_argument("--lockstep-speech", metavar="TOPIC",
                   help="with --lockstep, audio is followed by a wait for one message on TOPIC (speech/transcript)")

    p = sub.add_parser("record", help="record topics of the live ROS graph into a bag")
    p.add_argument("output")
    p.add_argument("--topics", nargs="+", required=True)
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--wait", type=float, default=60.0, metavar="S", help="wait at most S s for the topics to appear")
    p.add_argument("--count", type=int, help="stop after N messages on --count-topic (default: the first topic)")
    p.add_argument("--count-topic")
    p.add_argument("--idle-timeout", type=float, metavar="S", help="stop S s after the last message")
    p.add_argument("--max-duration", type=float, metavar="S")
    p.add_argument("--ready-file", metavar="F", help="create F once every topic is subscribed and matched")

    p = sub.add_parser("make-demo", help="write a demo bag from the procedural world")
    p.add_argument("output")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--fps", type=float, default=15.0)
    p.add_argument("--size", type=_size, default=(640, 480), metavar="WxH")
    p.add_argument("--encoding", default="rgb8",
                   help="rgb8 | bgr8 | rgba8 | bgra8 | mono8 | jpeg | png (compressed); a comma list cycles per frame")
    p.add_argument("--image-topic", default="/camera/image_raw")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--speak", metavar="VOICE",
                   help="also speak the referring command on /audio with this espeak-ng voice (e.g. en-us)")

    p = sub.add_parser("report", help="annotated video and latency/command summary of a node's output")
    p.add_argument("input", help="bag with the camera images (e.g. the demo bag)")
    p.add_argument("--segmentation-bag", required=True, help="bag with the node's segmentation topic")
    p.add_argument("--image-topic", help="image topic of INPUT (default: the only image topic)")
    p.add_argument("--video", help="annotated video to write (.mp4 with mp4v, or .gif)")
    p.add_argument("--summary", help="summary JSON to write (a .md next to it too)")
    p.add_argument("--strip", help="PNG to write: one annotated frame per command (the middle of its answers)")
    return top


def main(argv: list[str] | None = None) -> int:
    """Run `hyperseg_bag`; returns the process exit status."""
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(name)s: %(message)s", stream=sys.stderr)
    if args.verb == "process":
        from hyperseg_ros.bag.process import process

        summary = process(args.input, args.output, image_topic=args.image_topic, command_topic=args.command_topic,
                          segmentation_command_topic=args.segmentation_command_topic, params_file=args.params,
                          storage=args.storage, overlay=not args.no_overlay, progress=not args.quiet)
        print(json.dumps(asdict(summary), indent=1))
        return 1 if summary.errors else 0
    if args.verb == "play":
        from hyperseg_ros.bag.play import play

        stats = play(args.bag, rate=args.rate, loop=args.loop, topics=args.topics,
                     wait_for_subscribers_s=args.wait_for_subscribers, lockstep_topic=args.lockstep,
                     lockstep_timeout_s=args.lockstep_timeout, speech_topic=args.lockstep_speech)
        print(json.dumps(asdict(stats)))
        return 1 if stats.failed else 0
    if args.verb == "record":
        from hyperseg_ros.bag.record import record

        stats = record(args.output, args.topics, storage=args.storage, wait_s=args.wait, count=args.count,
                       count_topic=args.count_topic, idle_timeout_s=args.idle_timeout,
                       max_duration_s=args.max_duration, ready_file=args.ready_file)
        print(json.dumps(asdict(stats)))
        return 1 if stats.missing else 0
    if args.verb == "make-demo":
        from hyperseg_ros.bag.make_demo import make_demo

        info = make_demo(args.output, storage=args.storage, seconds=args.seconds, fps=args.fps, size=args.size,
                         encodings=args.encoding.split(","), image_topic=args.image_topic, seed=args.seed,
                         speak=args.speak)
        print(json.dumps(asdict(info), indent=1))
        return 0
    if args.verb == "report":
        from hyperseg_ros.bag.report import report

        summary = report(args.input, args.segmentation_bag, image_topic=args.image_topic, video=args.video,
                         summary=args.summary, strip=args.strip)
        print(json.dumps(summary, indent=1))
        return 0
    raise AssertionError(args.verb)
