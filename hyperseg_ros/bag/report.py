"""`hyperseg_bag report`: what the node answered on a stream, as an annotated video and a summary.

Inputs are the camera bag that was played and a bag holding the node's `segmentation` topic
(recorded live, or written by `hyperseg_bag process`). Segmentations are matched to frames by
header stamp. Every camera frame becomes one video frame: masks, ids, labels and scores drawn by
`hyperseg_ros.overlay`, under a banner with the command being answered; frames the node did not
process (dropped while it was busy) are shown plain and marked so.

When the camera bag carries its own ground truth (`ground_truth`, written by make-demo), the
summary says for each command on how many frames its target was found (a published instance with
IoU >= 0.5 on every target object) and under how many ids, and the video outlines the target in
white with the verdict of the frame in a second banner line. A visual prompt's boxes and points
are drawn in yellow on the frames that answer it. When the segmentation bag also holds the speech
node's transcripts, the frames answering a spoken command say what was heard, and the summary
lists every utterance.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from hyperseg_ros import image_codec, mask_rle
from hyperseg_ros.bag.make_demo import GROUND_TRUTH_TOPIC
from hyperseg_ros.bag.process import COMPRESSED, SEGMENTATION_COMMAND, SEGMENTATION_TOPIC, STRING, pick_image_topic
from hyperseg_ros.bag.storage import read, stamp_ns, topics
from hyperseg_ros.command import REGION_TASKS, TEXT_TASKS
from hyperseg_ros.overlay import render_overlay

SEGMENTATION = "hyperseg_ros/msg/Segmentation"
TRANSCRIPT = "hyperseg_ros/msg/Transcript"
BANNER_PX = 22
FOUND_IOU = 0.5


class _Shown:
    """What overlay.render_overlay needs of an instance, decoded from a SegmentedInstance."""

    def __init__(self, inst, height: int, width: int):
        self.id, self.label, self.score = int(inst.id), inst.label, float(inst.score)
        self.mask = mask_rle.decode(inst.mask_rle, height, width)


def segmentations(path) -> OrderedDict[int, object]:
    """{header stamp ns: Segmentation} of a bag's segmentation topic, in bag order."""
    seg_topics = [t for t, ty in topics(path).items() if ty == SEGMENTATION]
    if not seg_topics:
        raise ValueError(f"{path} has no {SEGMENTATION} topic")
    topic = next((t for t in seg_topics if t.lstrip("/") == SEGMENTATION_TOPIC.lstrip("/")), seg_topics[0])
    return OrderedDict((stamp_ns(m.header), m) for m in (r.message() for r in read(path, [topic])))


def transcripts(path) -> list:
    """The Transcript messages of a bag, in bag order ([] when it has none)."""
    wanted = [t for t, ty in topics(path).items() if ty == TRANSCRIPT]
    return [r.message() for r in read(path, wanted)] if wanted else []


def heard_line(transcript) -> str:
    return f'spoken, heard as "{transcript.text}" (confidence {transcript.confidence:.2f})'


def banner(frame: np.ndarray, text: str, *more: str) -> np.ndarray:
    """frame uint8 [H, W, 3] RGB with a dark strip of BANNER_PX rows on top per line of text."""
    strips = []
    for line in (text, *more):
        strip = np.full((BANNER_PX, frame.shape[1], 3), 24, np.uint8)
        cv2.putText(strip, line[: max(8, frame.shape[1] // 7)], (4, BANNER_PX - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                    (235, 235, 235), 1, cv2.LINE_AA)
        strips.append(strip)
    return np.concatenate([*strips, frame], 0)


def ground_truth(path) -> dict[int, object]:
    """{header stamp ns: Segmentation} of the camera bag's ground truth ({} when it has none)."""
    if GROUND_TRUTH_TOPIC not in topics(path):
        return {}
    return {stamp_ns(m.header): m for m in (r.message() for r in read(path, [GROUND_TRUTH_TOPIC]))}


def judge(truth, seg) -> dict:
    """One frame's answer against its ground truth -> {targets, found, ids: {target id: answer id},
    ious: {target id: best IoU}}. A target is found by the published instance of highest IoU when
    that IoU is >= FOUND_IOU; `found` says every target was (False when the node did not answer).
    Open vocabulary names what it finds: there only an instance with the target's label counts."""
    targets = {int(t.id): mask_rle.decode(t.mask_rle, truth.height, truth.width) for t in truth.instances}
    labels = {int(t.id): t.label.lower() for t in truth.instances}
    named = truth.task == "open_vocabulary"
    shown = [] if seg is None else [_Shown(i, seg.height, seg.width) for i in seg.instances]
    ids, ious = {}, {}
    for tid, mask in targets.items():
        best, best_id = 0.0, None
        for inst in shown:
            if named and inst.label.lower() != labels[tid]:
                continue
            union = np.logical_or(mask, inst.mask).sum()
            iou = float(np.logical_and(mask, inst.mask).sum() / union) if union else 0.0
            if iou > best:
                best, best_id = iou, inst.id
        ious[tid] = round(best, 3)
        if best >= FOUND_IOU:
            ids[tid] = best_id
    return {"targets": len(targets), "found": seg is not None and len(ids) == len(targets), "ids": ids, "ious": ious,
            "answered": seg is not None, "instances": len(shown)}


def _verdict(verdict: dict) -> str:
    if verdict["targets"] == 0:
        return "ground truth: no target on this frame" + ("" if verdict["instances"] == 0 else " (something shown)")
    parts = [f"target {t} -> #{verdict['ids'][t]} IoU {iou:.2f}" if t in verdict["ids"]
             else f"target {t} missed (best IoU {iou:.2f})" for t, iou in verdict["ious"].items()]
    return f"ground truth: {'FOUND' if verdict['found'] else 'MISSED'}: {', '.join(parts)}"


def _outline(frame: np.ndarray, truth) -> np.ndarray:
    out = frame.copy()
    for t in truth.instances:
        mask = mask_rle.decode(t.mask_rle, truth.height, truth.width).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
    return out


PROMPT_COLOUR = (255, 220, 0)  # yellow: the operator's box / point, distinct from every mask colour


def draw_prompt(frame: np.ndarray, command) -> np.ndarray:
    """The boxes (rectangles) and points (ringed crosses) of a visual-prompt SegmentationCommand,
    in image pixels, drawn on a copy of `frame` (uint8 [H, W, 3] RGB) and labelled `prompt`."""
    out = frame.copy()
    for b in command.boxes:
        x, y = int(b.x_offset), int(b.y_offset)
        cv2.rectangle(out, (x, y), (x + int(b.width), y + int(b.height)), PROMPT_COLOUR, 2, cv2.LINE_AA)
        below = y + int(b.height) + 13  # under the box: the answer's label sits above the mask
        cv2.putText(out, "prompt", (x + 2, below if below < out.shape[0] else max(10, y - 4)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, PROMPT_COLOUR, 1, cv2.LINE_AA)
    for pt in command.points:
        x, y = int(round(pt.x)), int(round(pt.y))
        cv2.circle(out, (x, y), 6, PROMPT_COLOUR, 2, cv2.LINE_AA)
        cv2.drawMarker(out, (x, y), PROMPT_COLOUR, cv2.MARKER_CROSS, 16, 1, cv2.LINE_AA)
    return out


def describe(seg) -> str:
    """One line naming the command a Segmentation answers."""
    what = seg.text if seg.task in TEXT_TASKS else ", ".join(seg.categories)
    ident = f" [{seg.command_id}]" if seg.command_id else ""
    return f"{seg.task}{ident}: {what}" if what else f"{seg.task}{ident}"


def video_frame(msg, seg, compressed: bool, index: int, truth=None, prompt=None, speech: str | None = None
                ) -> np.ndarray | None:
    """One video frame, uint8 [BANNER_PX + H, W, 3] RGB: the camera image with `seg` drawn (None: the
    node did not answer it), under a banner; None for an image that cannot be decoded. With the
    frame's ground truth `truth`, its targets are outlined and judged in a second banner line; with
    the visual-prompt command `prompt` that `seg` answers, its boxes and points are drawn; `speech` is
    one more banner line (what was heard of the spoken command `seg` answers; "" for a blank one)."""
    try:
        rgb = image_codec.compressed_to_rgb(msg) if compressed else np.ascontiguousarray(image_codec.image_to_rgb(msg))
    except image_codec.ImageError:
        return None
    more = (() if speech is None else (speech,)) + (() if truth is None else (_verdict(judge(truth, seg)),))
    if seg is None:
        shown_rgb = rgb if truth is None else _outline(rgb, truth)
        return banner(shown_rgb, f"frame {index}: not processed (dropped while the node was busy)", *more)
    shown = [_Shown(i, seg.height, seg.width) for i in seg.instances]
    drawn = render_overlay(rgb, shown)
    if truth is not None:
        drawn = _outline(drawn, truth)
    if prompt is not None:
        drawn = draw_prompt(drawn, prompt)
    return banner(drawn, f"{describe(seg)} | {len(shown)} inst | {seg.latency_ms:.0f} ms", *more)


STRIP_TILE_WIDTH = 320


def strip_stamps(segs) -> list[int]:
    """The stamp of the middle answer of each command (of the first for a visual prompt: the frame its
    boxes and points were given on), in the order the commands were answered."""
    runs: OrderedDict[str, list[int]] = OrderedDict()
    for stamp, seg in segs.items():
        runs.setdefault(seg.command_id or f"(default {seg.task})", []).append(stamp)
    return [stamps[0] if segs[stamps[0]].task in REGION_TASKS else stamps[len(stamps) // 2]
            for stamps in runs.values()]


def write_strip(frames: list[np.ndarray], path, columns: int = 2) -> None:
    """Video frames (uint8 [h, w, 3] RGB, one size) as a PNG grid of `columns` tiles STRIP_TILE_WIDTH wide."""
    h, w = frames[0].shape[:2]
    tiles = [cv2.resize(f, (STRIP_TILE_WIDTH, round(h * STRIP_TILE_WIDTH / w)), interpolation=cv2.INTER_AREA)
             for f in frames]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], 1) for i in range(0, len(tiles), columns)]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate(rows, 0)[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])


def report(input_bag, segmentation_bag, image_topic: str | None = None, video: str | None = None,
           summary: str | None = None, strip: str | None = None) -> dict:
    """Write the annotated `video` (.mp4, mp4v), `summary` (.json plus a .md beside it) and `strip`
    (a PNG of one video frame per command: the middle of its answers); return the summary."""
    segs = segmentations(segmentation_bag)
    said = transcripts(segmentation_bag)
    heard = {t.text: t for t in said if t.accepted}  # a spoken command's text -> what the speech node heard
    wanted = set(strip_stamps(segs)) if strip else set()
    shown: dict[int, np.ndarray] = {}
    truths = ground_truth(input_bag)
    bag_topics = topics(input_bag)
    image_topic = pick_image_topic(bag_topics, image_topic, input_bag)
    compressed = bag_topics[image_topic] == COMPRESSED
    writer, stamps = None, []
    sent = []  # commands recorded in the input bag
    prompts = {}  # command id -> SegmentationCommand with boxes or points, drawn on the frames answering it
    for record in read(input_bag):
        if record.topic == image_topic:
            msg = record.message()
            stamps.append(stamp_ns(msg.header))
            if video is None and stamps[-1] not in wanted:
                continue
            seg = segs.get(stamps[-1])
            spoken = heard.get(seg.text) if seg is not None and seg.task in TEXT_TASKS else None
            framed = video_frame(msg, seg, compressed, len(stamps) - 1, truths.get(stamps[-1]),
                                 None if seg is None else prompts.get(seg.command_id),
                                 (heard_line(spoken) if spoken else "") if said else None)  # one size for all frames
            if framed is None:
                continue
            if stamps[-1] in wanted:
                shown[stamps[-1]] = framed
            if video is None:
                continue
            if writer is None:
                Path(video).parent.mkdir(parents=True, exist_ok=True)
                writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), fps(input_bag, image_topic),
                                         (framed.shape[1], framed.shape[0]))
            writer.write(cv2.cvtColor(framed, cv2.COLOR_RGB2BGR))
        elif bag_topics[record.topic] in (STRING, SEGMENTATION_COMMAND):
            msg = record.message()
            if getattr(msg, "boxes", None) or getattr(msg, "points", None):
                prompts[msg.id] = msg
            sent.append({"bag_time_ns": record.timestamp, "topic": record.topic,
                         "text": msg.data if hasattr(msg, "data") else (msg.text or ", ".join(msg.categories)),
                         "id": getattr(msg, "id", "")})
    if writer is not None:
        writer.release()
    if strip and shown:
        write_strip([shown[t] for t in sorted(shown)], strip)
    result = _summary(segs, sent, stamps)
    if said:
        result["speech"] = [{"text": t.text, "confidence": round(float(t.confidence), 3), "accepted": t.accepted,
                             "alternatives": list(t.alternatives)} for t in said]
    if truths:
        result["ground_truth"] = _against_truth(segs, truths, stamps)
    result["video"] = str(video) if video else None
    if summary:
        Path(summary).parent.mkdir(parents=True, exist_ok=True)
        Path(summary).write_text(json.dumps(result, indent=1) + "\n")
        Path(summary).with_suffix(".md").write_text(markdown(result))
    return result


def _summary(segs, sent: list[dict], stamps: list[int]) -> dict:
    frames, processed = len(stamps), sum(s in segs for s in stamps)
    latency = np.array([s.latency_ms for s in segs.values()], np.float64)
    answered: OrderedDict[str, dict] = OrderedDict()
    frame_of = {s: i for i, s in enumerate(stamps)}
    for stamp, seg in segs.items():
        key = seg.command_id or f"(default {seg.task})"
        entry = answered.setdefault(key, {"command_id": seg.command_id, "task": seg.task, "command": describe(seg),
                                          "frames": 0, "first_frame": frame_of.get(stamp), "instances_mean": 0.0,
                                          "ids": []})
        entry["frames"] += 1
        entry["instances_mean"] += len(seg.instances)
        entry["ids"] = sorted(set(entry["ids"]) | {int(i.id) for i in seg.instances})
    for entry in answered.values():
        entry["instances_mean"] = round(entry["instances_mean"] / entry["frames"], 2)
    pct = (lambda q: round(float(np.percentile(latency, q)), 1)) if latency.size else (lambda q: None)
    return {"frames": frames, "processed": processed, "not_processed": frames - processed,
            "segmentations": len(segs),
            "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99),
                           "max": round(float(latency.max()), 1) if latency.size else None},
            "commands_sent": sent, "commands_answered": list(answered.values())}


def _against_truth(segs, truths: dict, stamps: list[int]) -> list[dict]:
    """Per command in force (in the order given): frames, frames with a visible target, frames
    where it was found, the ids it was found under, and empty answers on frames without a target."""
    commands: OrderedDict[tuple, dict] = OrderedDict()
    for index, stamp in enumerate(stamps):
        truth = truths.get(stamp)
        if truth is None or not truth.task:
            continue
        key = (truth.task, truth.command_id, truth.text, tuple(truth.categories))
        entry = commands.setdefault(key, {
            "task": truth.task, "command_id": truth.command_id, "command": describe(truth), "first_frame": index,
            "frames": 0, "answered": 0, "target_frames": 0, "found_frames": 0, "found_share": None,
            "ids": {}, "ids_per_target": 0, "no_target_frames": 0, "empty_when_no_target": 0})
        verdict = judge(truth, segs.get(stamp))
        entry["frames"] += 1
        entry["answered"] += verdict["answered"]
        if verdict["targets"]:
            entry["target_frames"] += 1
            entry["found_frames"] += verdict["found"]
            for target, answer in verdict["ids"].items():
                entry["ids"].setdefault(str(target), set()).add(int(answer))
        else:
            entry["no_target_frames"] += 1
            entry["empty_when_no_target"] += verdict["answered"] and verdict["instances"] == 0
    for entry in commands.values():
        entry["found_share"] = round(entry["found_frames"] / entry["target_frames"], 3) if entry["target_frames"] else None
        entry["ids"] = {t: sorted(ids) for t, ids in entry["ids"].items()}
        entry["ids_per_target"] = max((len(ids) for ids in entry["ids"].values()), default=0)
    return list(commands.values())


def markdown(summary: dict) -> str:
    """The summary as a short markdown page."""
    lat = summary["latency_ms"]
    lines = ["# hyperseg_ros demo", "",
             f"- frames: {summary['frames']}, processed: {summary['processed']}, "
             f"not processed: {summary['not_processed']}",
             f"- node latency (receive to publish): p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms",
             f"- video: {summary.get('video')}"]
    lines += [f"- spoken: \"{t['text']}\", confidence {t['confidence']:.2f}, "
              f"{'sent as the command' if t['accepted'] else 'not sent (doubtful)'}" for t in summary.get("speech", [])]
    lines += ["", "| command id | task | command | frames | first frame | ids |", "|---|---|---|---|---|---|"]
    for c in summary["commands_answered"]:
        lines.append(f"| {c['command_id'] or '-'} | {c['task']} | {c['command'].replace('|', '/')} | {c['frames']} "
                     f"| {c['first_frame']} | {' '.join(map(str, c['ids']))} |")
    if summary.get("ground_truth"):
        lines += ["", f"Against the bag's ground truth (found: every target object has an instance with IoU >= "
                      f"{FOUND_IOU}; ids: the instance ids it was found under, per target object):", "",
                  "| command | task | frames | answered | target visible | found | found share | ids per target | "
                  "empty when no target |", "|---|---|---|---|---|---|---|---|---|"]
        for c in summary["ground_truth"]:
            ids = "; ".join(f"{t}: {' '.join(map(str, v))}" for t, v in c["ids"].items()) or "-"
            share = "-" if c["found_share"] is None else f"{100 * c['found_share']:.0f}%"
            lines.append(f"| {c['command'].replace('|', '/')} | {c['task']} | {c['frames']} | {c['answered']} | "
                         f"{c['target_frames']} | "
                         f"{c['found_frames']} | {share} | {c['ids_per_target']} ({ids}) | "
                         f"{c['empty_when_no_target']}/{c['no_target_frames']} |")
    return "\n".join(lines) + "\n"


def fps(path, topic: str) -> float:
    """Frame rate of `topic` in the bag at `path` from its median bag-time step (15 if under 2 frames)."""
    times = np.array([r.timestamp for r in read(path, [topic])], np.float64)
    return float(1e9 / np.median(np.diff(times))) if times.size > 1 else 15.0
