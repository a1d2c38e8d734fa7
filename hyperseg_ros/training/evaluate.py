"""Evaluate a HyperSeg model on held-out scenes of the world, through `SegmentationSession` (the
node's own path): markdown + JSON report and a PNG grid of predictions next to ground truth.

    python -P -m hyperseg_ros.training.evaluate --model models/hyperseg-world --split test
    python -P -m hyperseg_ros.training.evaluate --split fresh      # scenes the project never saw

Metrics (training/metrics.py): referring and reasoning cIoU / gIoU of the single predicted mask;
open-vocabulary mask AP50 and mAP (COCOeval); video J&F of a referred target through a clip and
identity switches per 100 frames (open-vocabulary clips); visual-prompt J&F from a box and from a
point given on the first frame; no-match rate (commands describing something absent that yield no
instance).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from hyperseg_ros.command import TEXT_TASKS
from hyperseg_ros.model import load_model
from hyperseg_ros.model.session import SegmentationSession
from hyperseg_ros.training.metrics import IoUAccumulator, MaskAP, identity_switches, j_and_f
from hyperseg_ros.world.commands import WorldCommand, sample_command
from hyperseg_ros.world.scene import Scene, draw_scene
from hyperseg_ros.world.splits import fresh_offset, sample_rng
from hyperseg_ros.world.video import draw_clip

# Acceptance targets of issue 4: (metric key, threshold, "min" = at least / "max" = at most).
TARGETS = {
    "referring_ciou": (0.75, "min"), "reasoning_ciou": (0.70, "min"), "open_vocabulary_ap50": (0.75, "min"),
    "video_jf": (0.70, "min"), "id_switches_per_100_frames": (2.0, "max"), "visual_prompt_box_jf": (0.75, "min"),
    "visual_prompt_point_jf": (0.65, "min"), "no_match_rate": (0.90, "min"),
}
STREAMS = {"referring": 0, "reasoning": 1, "open_vocabulary": 2, "clip_referring": 3, "clip_open_vocabulary": 4,
           "clip_visual_prompt_box": 5, "clip_visual_prompt_point": 6}
IMAGE_SIZE = (320, 240)


def _target_mask(scene: Scene, wc: WorldCommand) -> np.ndarray:
    index = {o.identity: i for i, o in enumerate(scene.objects)}
    mask = np.zeros((scene.height, scene.width), bool)
    for identity in wc.targets:
        mask |= scene.masks[index[identity]]
    return mask


def _top_mask(instances, shape) -> np.ndarray:
    return instances[0].mask if instances else np.zeros(shape, bool)


class Evaluation:
    """Runs the session over one split and accumulates every metric."""

    def __init__(self, session: SegmentationSession, split: str, offset: int):
        self.session, self.split, self.offset = session, split, offset
        self.frame_ms: list[float] = []
        self.examples: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # title, image, pred, gt

    def _run(self, frames: list[np.ndarray], wc: WorldCommand) -> list[list]:
        self.session.set_command(wc.command)
        results = []
        for image in frames:
            t = time.perf_counter()
            results.append(self.session.process(image).instances)
            self.frame_ms.append((time.perf_counter() - t) * 1e3)
        return results

    def _rng(self, stream: str, i: int) -> np.random.Generator:
        return sample_rng(self.split, self.offset + i, STREAMS[stream])

    def text_task(self, task: str, n: int, no_match_rate: float) -> tuple[IoUAccumulator, list[bool]]:
        acc, no_match = IoUAccumulator(), []
        for i in tqdm(range(n), desc=task, leave=False):
            rng = self._rng(task, i)
            scene = draw_scene(rng, *IMAGE_SIZE)
            wc = sample_command(rng, scene, task, no_match_rate)
            instances = self._run([scene.image], wc)[0]
            pred = _top_mask(instances, scene.masks.shape[1:])
            if wc.targets:
                acc.add(pred, _target_mask(scene, wc))
            else:
                no_match.append(not instances)
            if i < 3:
                self.examples.append((f"{task}: {wc.command.text}", scene.image, pred, _target_mask(scene, wc)))
        return acc, no_match

    def open_vocabulary(self, n: int) -> dict[str, float]:
        ap = MaskAP()
        for i in tqdm(range(n), desc="open_vocabulary", leave=False):
            rng = self._rng("open_vocabulary", i)
            scene = draw_scene(rng, *IMAGE_SIZE)
            wc = sample_command(rng, scene, "open_vocabulary")
            instances = self._run([scene.image], wc)[0]
            index = {o.identity: k for k, o in enumerate(scene.objects)}
            gt = [(name, scene.masks[index[identity]]) for name, ids in zip(wc.command.categories, wc.category_targets)
                  for identity in ids]
            ap.add(gt, [(inst.label, inst.score, inst.mask) for inst in instances], scene.height, scene.width)
            if i < 3:
                pred = np.any([inst.mask for inst in instances], 0) if instances else np.zeros(scene.masks.shape[1:], bool)
                gt_mask = np.any([m for _, m in gt], 0) if gt else np.zeros_like(pred)
                self.examples.append(("open vocabulary: " + ", ".join(wc.command.categories), scene.image, pred, gt_mask))
        return ap.evaluate()

    def clips(self, stream: str, n: int, frames: int) -> tuple[list[float], int, int]:
        """-> (J&F per clip, identity switches, frames) for clips of `stream`."""
        task = stream.removeprefix("clip_")
        scores, switches, total = [], 0, 0
        for i in tqdm(range(n), desc=stream, leave=False):
            rng = self._rng(stream, i)
            clip = draw_clip(rng, *IMAGE_SIZE, frames=frames)
            wc = sample_command(rng, clip.frames[0], task, no_match_rate=0.0, static=True)
            results = self._run([f.image for f in clip.frames], wc)
            total += len(results)
            if task == "open_vocabulary":
                wanted = {identity for ids in wc.category_targets for identity in ids}
                gt = [{o.identity: m for o, m in zip(f.objects, f.masks) if o.identity in wanted and m.any()}
                      for f in clip.frames]
                pred = [{inst.id: inst.mask for inst in r} for r in results]
                switches += identity_switches(gt, pred)
            else:
                preds = [_top_mask(r, f.masks.shape[1:]) for r, f in zip(results, clip.frames)]
                scores.append(j_and_f(preds, [_target_mask(f, wc) for f in clip.frames])[0])
        return scores, switches, total


def _overlay(image: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    out = image.copy()
    out[mask] = (0.45 * out[mask] + 0.55 * np.array(colour)).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, 1)
    return out


def picture_grid(examples, path: Path) -> None:
    """Rows of (prediction | ground truth) with the command as a caption; RGB PNG."""
    rows = []
    for title, image, pred, gt in examples:
        pair = np.concatenate([_overlay(image, pred, (0, 255, 255)), _overlay(image, gt, (255, 0, 255))], 1)
        caption = np.full((18, pair.shape[1], 3), 255, np.uint8)
        cv2.putText(caption, title[:90], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.concatenate([caption, pair], 0))
    if rows:
        cv2.imwrite(str(path), np.concatenate(rows, 0)[..., ::-1])


def evaluate(session: SegmentationSession, split: str = "test", offset: int = 0, samples: int = 100,
             clips: int = 10, frames: int = 16, out: Path | None = None) -> dict:
    """Every metric of the issue on `samples` stills per task and `clips` clips per video task."""
    ev = Evaluation(session, split, offset)
    report: dict = {"split": split, "seed_offset": offset, "samples_per_task": samples, "clips_per_task": clips,
                    "frames_per_clip": frames}
    no_match: list[bool] = []
    for task in TEXT_TASKS:
        acc, nm = ev.text_task(task, samples, no_match_rate=0.15)
        report[f"{task}_ciou"], report[f"{task}_giou"] = acc.ciou, acc.giou
        no_match += nm
    report["no_match_rate"] = float(np.mean(no_match)) if no_match else float("nan")
    report["no_match_commands"] = len(no_match)
    ap = ev.open_vocabulary(samples)
    report["open_vocabulary_ap50"], report["open_vocabulary_map"] = ap["AP50"], ap["mAP"]
    jf, _, _ = ev.clips("clip_referring", clips, frames)
    report["video_jf"] = float(np.mean(jf)) if jf else float("nan")
    _, switches, total = ev.clips("clip_open_vocabulary", clips, frames)
    report["id_switches_per_100_frames"] = 100.0 * switches / max(total, 1)
    for kind in ("box", "point"):
        jf, _, _ = ev.clips(f"clip_visual_prompt_{kind}", clips, frames)
        report[f"visual_prompt_{kind}_jf"] = float(np.mean(jf)) if jf else float("nan")
    report["median_frame_ms"] = float(np.median(ev.frame_ms))
    report["passed"] = {k: bool(report[k] >= t if how == "min" else report[k] <= t) for k, (t, how) in TARGETS.items()}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(report, indent=1))
        (out / "eval.md").write_text(markdown(report))
        picture_grid(ev.examples, out / "eval_grid.png")
    return report


def markdown(report: dict) -> str:
    lines = [f"# Evaluation on split `{report['split']}` (seed offset {report['seed_offset']})", "",
             f"{report['samples_per_task']} images per task, {report['clips_per_task']} clips of "
             f"{report['frames_per_clip']} frames per video task; median {report['median_frame_ms']:.0f} ms per frame.",
             "", "| metric | value | target | met |", "|---|---|---|---|"]
    for key in ("referring_ciou", "referring_giou", "reasoning_ciou", "reasoning_giou", "open_vocabulary_ap50",
                "open_vocabulary_map", "video_jf", "id_switches_per_100_frames", "visual_prompt_box_jf",
                "visual_prompt_point_jf", "no_match_rate"):
        target = TARGETS.get(key)
        goal = "" if target is None else ("≥ " if target[1] == "min" else "≤ ") + f"{target[0]:g}"
        met = "" if target is None else ("yes" if report["passed"][key] else "no")
        lines.append(f"| {key} | {report[key]:.3f} | {goal} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="", help="model directory ('' = the embedded default model)")
    p.add_argument("--split", default="test", choices=("val", "test", "fresh"))
    p.add_argument("--offset", type=int, default=None, help="first sample index (fresh: random by default)")
    p.add_argument("--samples", type=int, default=100, help="images per still-image task")
    p.add_argument("--clips", type=int, default=10, help="clips per video task")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (8..64)")
    p.add_argument("--out", default="out/eval")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    offset = args.offset if args.offset is not None else (fresh_offset() if args.split == "fresh" else 0)
    model, tokenizer = load_model(args.model, device=args.device)
    report = evaluate(SegmentationSession(model, tokenizer), args.split, offset, args.samples, args.clips,
                      args.frames, Path(args.out))
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
