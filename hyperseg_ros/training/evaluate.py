"""Evaluate a HyperSeg model on held-out scenes of the world, through `SegmentationSession` at the
node's default parameters: markdown + JSON report and a PNG grid of predictions next to ground truth.

    python -P -m hyperseg_ros.training.evaluate                      # val, test and shifted (make eval)
    python -P -m hyperseg_ros.training.evaluate --split test --model models/hyperseg-world
    python -P -m hyperseg_ros.training.evaluate --split fresh         # new scenes on every run

Splits: `val` (development), `test` (the model card), both drawn by the training generator on seed
ranges training never uses; `shifted`, drawn by a second, independently written renderer
(world/shifted.py) to measure generalisation beyond the training drawings; `fresh` (random offset).

Metrics (training/metrics.py), each with a 95% bootstrap interval and its sample count:
referring and reasoning cIoU / gIoU, overall and per kind of description; no-match rate (commands
describing something absent that yield no instance) with the false-abstention rate (commands
with a target that yield no instance); open-vocabulary mask AP50 / mAP (COCOeval, all scores) and
precision / recall at IoU 0.5 with the right label at the node's default score threshold; video
J&F of a referred target; identity switches per 100 frames with coverage (matched / ground-truth
object-frames) on open-vocabulary clips; visual-prompt J&F from a box and from a point, without
the prompt frame.
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

from hyperseg_ros.model import load_model
from hyperseg_ros.model.session import Instance, SegmentationSession
from hyperseg_ros.training.metrics import (
    IoUAccumulator,
    MaskAP,
    bootstrap_mean,
    bootstrap_ratio,
    j_and_f,
    label_matches,
    track_matches,
)
from hyperseg_ros.world import shifted
from hyperseg_ros.world.commands import WorldCommand, sample_command
from hyperseg_ros.world.scene import Scene, draw_scene, random_image_size
from hyperseg_ros.world.splits import fresh_offset, sample_rng
from hyperseg_ros.world.video import draw_clip

# Acceptance targets: (threshold, "min" = at least / "max" = at most). Two are judged in pairs, so that
# a model that answers nothing passes none: no-match needs few false abstentions, identity switches
# need coverage.
TARGETS = {
    "referring_ciou": (0.75, "min"), "reasoning_ciou": (0.70, "min"), "open_vocabulary_ap50": (0.75, "min"),
    "video_jf": (0.70, "min"), "id_switches_per_100_frames": (2.0, "max"), "id_coverage": (0.80, "min"),
    "visual_prompt_box_jf": (0.75, "min"), "visual_prompt_point_jf": (0.65, "min"), "no_match_rate": (0.90, "min"),
    "false_abstention_rate": (0.10, "max"),
}
PAIRED = {"no_match_rate": "false_abstention_rate", "id_switches_per_100_frames": "id_coverage"}
MAKE_EVAL_SPLITS = ("val", "test", "shifted")
STREAMS = {"referring": 0, "reasoning": 1, "open_vocabulary": 2, "clip_referring": 3, "clip_open_vocabulary": 4,
           "clip_visual_prompt_box": 5, "clip_visual_prompt_point": 6}
SHORT_SIDE = (120, 480)  # image sizes of the evaluation: random_image_size within this short side
REFERRING_KINDS = ("attributes", "position", "superlative", "relation")
REASONING_KINDS = ("corners", "colour", "shape")
REPORT_ORDER = ("referring_ciou", "referring_giou", "reasoning_ciou", "reasoning_giou", "no_match_rate",
                "false_abstention_rate", "open_vocabulary_ap50", "open_vocabulary_map", "open_vocabulary_precision",
                "open_vocabulary_recall", "video_jf", "id_switches_per_100_frames", "id_coverage",
                "visual_prompt_box_jf", "visual_prompt_point_jf")


def renderers(split: str):
    """(draw_scene, draw_clip) of a split: the evaluation renderer for `shifted`, else the generator's."""
    return (shifted.draw_scene, shifted.draw_clip) if split == "shifted" else (draw_scene, draw_clip)


def target_mask(scene: Scene, identities) -> np.ndarray:
    index = {o.identity: i for i, o in enumerate(scene.objects)}
    mask = np.zeros((scene.height, scene.width), bool)
    for identity in identities:
        mask |= scene.masks[index[identity]]
    return mask


def _top_mask(instances, shape) -> np.ndarray:
    return instances[0].mask if instances else np.zeros(shape, bool)


def _stat(value: float, interval: tuple[float, float], n: int) -> dict:
    return {"value": float(value), "low": float(interval[0]), "high": float(interval[1]), "n": int(n)}


def _ciou_stat(acc: IoUAccumulator) -> dict:
    return _stat(acc.ciou, bootstrap_ratio(acc.intersections, acc.unions), len(acc.unions))


class Evaluation:
    """Runs a session over one split and accumulates every metric. `predict` is the one place a
    model is asked; the known-answer tests replace it with perfect or empty answers."""

    def __init__(self, session: SegmentationSession | None, split: str, offset: int):
        self.session, self.split, self.offset = session, split, offset
        self.draw_scene, self.draw_clip = renderers(split)
        self.default_threshold = session.score_threshold if session is not None else 0.5
        self.ap_resamples = 100  # bootstrap resamples of COCOeval (each a full evaluation)
        self.progress_path: Path | None = None  # metrics so far are saved here after each task
        self.frame_ms: list[float] = []
        self.examples: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []  # title, image, pred, gt

    def predict(self, frames: list[Scene], wc: WorldCommand, all_scores: bool = False) -> list[list[Instance]]:
        """The session's instances for each frame of a stream that received `wc` before the first.
        all_scores: keep instances below the session's score threshold too (for AP)."""
        session = self.session
        threshold = session.score_threshold
        session.score_threshold = 0.0 if all_scores else threshold
        try:
            session.set_command(wc.command)
            results = []
            for scene in frames:
                t = time.perf_counter()
                results.append(session.process(scene.image).instances)
                self.frame_ms.append((time.perf_counter() - t) * 1e3)
        finally:
            session.score_threshold = threshold
        return results

    def _scene(self, stream: str, i: int) -> tuple[np.random.Generator, Scene]:
        rng = sample_rng(self.split, self.offset + i, STREAMS[stream])
        return rng, self.draw_scene(rng, *random_image_size(rng, SHORT_SIDE))

    def text_task(self, task: str, n: int, no_match_rate: float = 0.15) -> dict:
        """Referring or reasoning stills -> {"all": IoUAccumulator, kind: IoUAccumulator, "abstained":
        [bool per command with a target], "no_match": [bool per command without one]}."""
        out: dict = {"all": IoUAccumulator(), "abstained": [], "no_match": []}
        for i in tqdm(range(n), desc=f"{self.split} {task}", leave=False):
            rng, scene = self._scene(task, i)
            wc = sample_command(rng, scene, task, no_match_rate)
            instances = self.predict([scene], wc)[0]
            pred, gt = _top_mask(instances, scene.masks.shape[1:]), target_mask(scene, wc.targets)
            if wc.targets:
                out["all"].add(pred, gt)
                out.setdefault(wc.kind, IoUAccumulator()).add(pred, gt)
                out["abstained"].append(not instances)
            else:
                out["no_match"].append(not instances)
            if i < 3:
                self.examples.append((f"{task}: {wc.command.text}", scene.image, pred, gt))
        return out

    def open_vocabulary(self, n: int) -> dict:
        """-> {"ap": MaskAP over all scores, "tp", "predicted", "truth": per-image counts at the default threshold}."""
        ap, tp, predicted, truth = MaskAP(), [], [], []
        for i in tqdm(range(n), desc=f"{self.split} open_vocabulary", leave=False):
            rng, scene = self._scene("open_vocabulary", i)
            wc = sample_command(rng, scene, "open_vocabulary")
            instances = self.predict([scene], wc, all_scores=True)[0]
            index = {o.identity: k for k, o in enumerate(scene.objects)}
            gt = [(name, scene.masks[index[identity]]) for name, ids in zip(wc.command.categories, wc.category_targets)
                  for identity in ids]
            ap.add(gt, [(inst.label, inst.score, inst.mask) for inst in instances], scene.height, scene.width)
            kept = [(inst.label, inst.mask) for inst in instances if inst.score >= self.default_threshold]
            tp.append(label_matches(gt, kept))
            predicted.append(len(kept))
            truth.append(len(gt))
            if i < 3:
                empty = np.zeros(scene.masks.shape[1:], bool)
                pred = np.any([m for _, m in kept], 0) if kept else empty
                gt_mask = np.any([m for _, m in gt], 0) if gt else empty
                self.examples.append(("open vocabulary: " + ", ".join(wc.command.categories), scene.image, pred, gt_mask))
        return {"ap": ap, "tp": tp, "predicted": predicted, "truth": truth}

    def clips(self, stream: str, n: int, frames: int) -> dict:
        """-> {"jf": [per clip]} for referring and visual prompts (visual prompts: without the prompt
        frame); {"switches", "matched", "truth", "frames": [per clip]} for open vocabulary."""
        task = stream.removeprefix("clip_")
        out: dict = {"jf": [], "switches": [], "matched": [], "truth": [], "frames": []}
        for i in tqdm(range(n), desc=f"{self.split} {stream}", leave=False):
            rng = sample_rng(self.split, self.offset + i, STREAMS[stream])
            clip = self.draw_clip(rng, *random_image_size(rng, SHORT_SIDE), frames=frames)
            wc = sample_command(rng, clip.frames[0], task, no_match_rate=0.0, static=True)
            results = self.predict(clip.frames, wc)
            if task == "open_vocabulary":
                wanted = {identity for ids in wc.category_targets for identity in ids}
                gt = [{o.identity: m for o, m in zip(f.objects, f.masks) if o.identity in wanted and m.any()}
                      for f in clip.frames]
                pred = [{inst.id: inst.mask for inst in r} for r in results]
                switches, matched, truth = track_matches(gt, pred)
                out["switches"].append(switches), out["matched"].append(matched), out["truth"].append(truth)
                out["frames"].append(len(results))
            else:
                first = 1 if task.startswith("visual_prompt") else 0  # the prompt frame gives its answer away
                preds = [_top_mask(r, f.masks.shape[1:]) for r, f in zip(results, clip.frames)][first:]
                gts = [target_mask(f, wc.targets) for f in clip.frames][first:]
                out["jf"].append(j_and_f(preds, gts)[0])
        return out

    def _saved(self, metrics: dict) -> None:
        if self.progress_path is not None:  # a long run that is stopped keeps what it measured
            self.progress_path.parent.mkdir(parents=True, exist_ok=True)
            self.progress_path.write_text(json.dumps({"split": self.split, "metrics": metrics}, indent=1))

    def run(self, samples: int, clips: int, frames: int) -> dict:
        """Every metric -> the report (JSON-ready)."""
        metrics: dict[str, dict] = {}
        per_kind: dict[str, dict] = {}
        abstained, no_match = [], []
        for task, kinds in (("referring", REFERRING_KINDS), ("reasoning", REASONING_KINDS)):
            r = self.text_task(task, samples)
            metrics[f"{task}_ciou"] = _ciou_stat(r["all"])
            metrics[f"{task}_giou"] = _stat(r["all"].giou, bootstrap_mean(r["all"].per_sample), len(r["all"].per_sample))
            per_kind[task] = {k: _ciou_stat(r[k]) if k in r else _stat(float("nan"), (float("nan"),) * 2, 0)
                              for k in kinds}
            abstained += r["abstained"]
            no_match += r["no_match"]
        metrics["no_match_rate"] = _stat(np.mean(no_match) if no_match else float("nan"), bootstrap_mean(no_match),
                                         len(no_match))
        metrics["false_abstention_rate"] = _stat(np.mean(abstained) if abstained else float("nan"),
                                                 bootstrap_mean(abstained), len(abstained))
        self._saved(metrics)
        ov = self.open_vocabulary(samples)
        ap, ap_ci = ov["ap"].evaluate(), ov["ap"].bootstrap(self.ap_resamples)
        metrics["open_vocabulary_ap50"] = _stat(ap["AP50"], ap_ci["AP50"], samples)
        metrics["open_vocabulary_map"] = _stat(ap["mAP"], ap_ci["mAP"], samples)
        tp, predicted, truth = (np.array(ov[k], float) for k in ("tp", "predicted", "truth"))
        metrics["open_vocabulary_precision"] = _stat(tp.sum() / predicted.sum() if predicted.sum() else float("nan"),
                                                     bootstrap_ratio(tp, predicted), int(predicted.sum()))
        metrics["open_vocabulary_recall"] = _stat(tp.sum() / truth.sum() if truth.sum() else float("nan"),
                                                  bootstrap_ratio(tp, truth), int(truth.sum()))
        self._saved(metrics)
        jf = self.clips("clip_referring", clips, frames)["jf"]
        metrics["video_jf"] = _stat(np.mean(jf) if jf else float("nan"), bootstrap_mean(jf), len(jf))
        self._saved(metrics)
        t = self.clips("clip_open_vocabulary", clips, frames)
        sw, fr = np.array(t["switches"], float), np.array(t["frames"], float)
        metrics["id_switches_per_100_frames"] = _stat(100 * sw.sum() / max(fr.sum(), 1),
                                                      tuple(100 * x for x in bootstrap_ratio(sw, fr)), len(sw))
        matched, truth = np.array(t["matched"], float), np.array(t["truth"], float)
        metrics["id_coverage"] = _stat(matched.sum() / truth.sum() if truth.sum() else float("nan"),
                                       bootstrap_ratio(matched, truth), len(matched))
        self._saved(metrics)
        for kind in ("box", "point"):
            jf = self.clips(f"clip_visual_prompt_{kind}", clips, frames)["jf"]
            metrics[f"visual_prompt_{kind}_jf"] = _stat(np.mean(jf) if jf else float("nan"), bootstrap_mean(jf), len(jf))
            self._saved(metrics)
        return report_of(self.split, self.offset, samples, clips, frames, metrics, per_kind,
                         float(np.median(self.frame_ms)) if self.frame_ms else float("nan"))


def passed(metrics: dict[str, dict]) -> dict[str, bool]:
    """Each target met by its point estimate (paired targets need their partner too; NaN fails)."""
    ok = {}
    for key, (threshold, how) in TARGETS.items():
        v = metrics[key]["value"]
        ok[key] = bool(v >= threshold if how == "min" else v <= threshold)  # NaN compares False
    for key, partner in PAIRED.items():
        ok[key] = ok[key] and ok[partner]
    return ok


def report_of(split: str, offset: int, samples: int, clips: int, frames: int, metrics: dict, per_kind: dict,
              median_ms: float) -> dict:
    report = {"split": split, "renderer": "shifted (world/shifted.py)" if split == "shifted" else "training generator",
              "seed_offset": offset, "samples_per_task": samples, "clips_per_task": clips, "frames_per_clip": frames,
              "image_short_side": list(SHORT_SIDE), "median_frame_ms": median_ms, "metrics": metrics,
              "per_kind": per_kind, "passed": passed(metrics)}
    report.update({k: m["value"] for k, m in metrics.items()})  # flat values: report["referring_ciou"]
    return report


def evaluate(session: SegmentationSession, split: str = "test", offset: int = 0, samples: int = 200,
             clips: int = 32, frames: int = 16, out: Path | None = None) -> dict:
    """Every metric on `samples` stills per task and `clips` clips per video task of one split."""
    ev = Evaluation(session, split, offset)
    ev.progress_path = None if out is None else out / "eval_progress.json"
    report = ev.run(samples, clips, frames)
    if out is not None:
        write_report(report, out, ev.examples)
    return report


def write_report(report: dict, out: Path, examples=()) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=1))
    (out / "eval.md").write_text(markdown(report))
    picture_grid(examples, out / "eval_grid.png")


def _overlay(image: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    out = image.copy()
    out[mask] = (0.45 * out[mask] + 0.55 * np.array(colour)).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, colour, 1)
    return cv2.resize(out, (320, 240), interpolation=cv2.INTER_AREA)  # one size for every row


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


def _cell(m: dict) -> str:
    return f"{m['value']:.3f} [{m['low']:.2f}, {m['high']:.2f}]"


def markdown(report: dict) -> str:
    m = report["metrics"]
    lines = [f"# Evaluation on split `{report['split']}` ({report['renderer']}, seed offset {report['seed_offset']})",
             "", f"{report['samples_per_task']} images per task, {report['clips_per_task']} clips of "
             f"{report['frames_per_clip']} frames per video task, short image side {report['image_short_side']} px; "
             f"median {report['median_frame_ms']:.0f} ms per frame. Values with 95% bootstrap intervals; n = "
             "commands, instances or clips behind each.", "",
             "| metric | value [95% interval] | n | target | met |", "|---|---|---|---|---|"]
    for key in REPORT_ORDER:
        target = TARGETS.get(key)
        goal = "" if target is None else ("≥ " if target[1] == "min" else "≤ ") + f"{target[0]:g}"
        met = "" if target is None else ("yes" if report["passed"][key] else "no")
        lines.append(f"| {key} | {_cell(m[key])} | {m[key]['n']} | {goal} | {met} |")
    lines += ["", "| cIoU per kind | value [95% interval] | n |", "|---|---|---|"]
    for task, kinds in report["per_kind"].items():
        for kind, s in kinds.items():
            lines.append(f"| {task}: {kind} | {_cell(s)} | {s['n']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="", help="model directory ('' = the embedded default model)")
    p.add_argument("--split", default="all", choices=("all", "val", "test", "shifted", "fresh"),
                   help="all = " + ", ".join(MAKE_EVAL_SPLITS))
    p.add_argument("--offset", type=int, default=None, help="first sample index (fresh: random by default)")
    p.add_argument("--samples", type=int, default=200, help="images per still-image task")
    p.add_argument("--clips", type=int, default=32, help="clips per video task")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (8..64)")
    p.add_argument("--out", default="out/eval", help="reports go to OUT/<split>/")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model, device=args.device)
    reports = []
    for split in MAKE_EVAL_SPLITS if args.split == "all" else (args.split,):
        offset = args.offset if args.offset is not None else (fresh_offset() if split == "fresh" else 0)
        start = time.perf_counter()
        report = evaluate(SegmentationSession(model, tokenizer), split, offset, args.samples, args.clips,
                          args.frames, Path(args.out) / split)
        print(markdown(report))
        print(f"split {split}: {time.perf_counter() - start:.0f} s", flush=True)
        reports.append(report)
    return reports


if __name__ == "__main__":
    main()
