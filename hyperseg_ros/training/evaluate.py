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
precision / recall at IoU 0.5 with the right label at the model's score threshold, label accuracy
among found objects, distinct labels per image against distinct true categories, and whether a
permuted category list keeps every label; video J&F of a referred target; identity switches per
100 frames with coverage (matched / ground-truth object-frames) on open-vocabulary clips;
visual-prompt J&F from a box and from a point, without the prompt frame; and, per task, whether a
still stream's first answer equals its fifth (no warm-up).

The session runs at its score thresholds (the model's own per task, unless given one). Answers
are collected with every score, so the report also holds each task's curve over THRESHOLD_GRID
(`curves`), from which training/calibrate.py chooses the thresholds a model states.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
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
    iou,
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
    "open_vocabulary_precision": (0.75, "min"), "open_vocabulary_recall": (0.75, "min"),
    "video_jf": (0.70, "min"), "id_switches_per_100_frames": (2.0, "max"), "id_coverage": (0.80, "min"),
    "visual_prompt_box_jf": (0.75, "min"), "visual_prompt_point_jf": (0.65, "min"), "no_match_rate": (0.90, "min"),
    "false_abstention_rate": (0.05, "max"), "open_vocabulary_label_accuracy": (0.90, "min"),
    "open_vocabulary_distinct_labels": (1.0, "near"), "open_vocabulary_permutation_consistency": (0.95, "min"),
    **{f"first_frame_agreement_{task}": (0.95, "min") for task in ("referring", "reasoning", "open_vocabulary",
                                                                   "visual_prompt")},
}
NEAR = 0.1  # a "near" target holds within this share of its value
PAIRED = {"no_match_rate": "false_abstention_rate", "id_switches_per_100_frames": "id_coverage"}
MAKE_EVAL_SPLITS = ("val", "test", "shifted")
STREAMS = {"referring": 0, "reasoning": 1, "open_vocabulary": 2, "clip_referring": 3, "clip_open_vocabulary": 4,
           "clip_visual_prompt_box": 5, "clip_visual_prompt_point": 6, "still_referring": 7, "still_reasoning": 8,
           "still_open_vocabulary": 9, "still_visual_prompt": 10, "permutation": 11}
STILL_TASKS = ("referring", "reasoning", "open_vocabulary", "visual_prompt")
STILL_FRAMES = 5  # a still stream: frame 1's answer must equal frame 5's
THRESHOLD_GRID = tuple(round(0.05 + 0.05 * k, 2) for k in range(18))  # 0.05 .. 0.9
SHORT_SIDE = (120, 480)  # image sizes of the evaluation: random_image_size within this short side
REFERRING_KINDS = ("attributes", "position", "superlative", "relation")
REASONING_KINDS = ("corners", "colour", "shape")
REPORT_ORDER = ("referring_ciou", "referring_giou", "reasoning_ciou", "reasoning_giou", "no_match_rate",
                "false_abstention_rate", "open_vocabulary_ap50", "open_vocabulary_map", "open_vocabulary_precision",
                "open_vocabulary_recall", "open_vocabulary_label_accuracy", "open_vocabulary_distinct_labels",
                "open_vocabulary_permutation_consistency", "video_jf", "id_switches_per_100_frames", "id_coverage",
                "visual_prompt_box_jf", "visual_prompt_point_jf", "first_frame_agreement_referring",
                "first_frame_agreement_reasoning", "first_frame_agreement_open_vocabulary",
                "first_frame_agreement_visual_prompt")


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


def _mean_stat(values) -> dict:
    """Mean of per-item values (bools or floats) with its interval; NaN (a failed target) when empty."""
    return _stat(np.mean(values) if len(values) else float("nan"), bootstrap_mean(values), len(values))


def _ratio_stat(num, den) -> dict:
    num, den = np.asarray(num, float), np.asarray(den, float)
    return _stat(num.sum() / den.sum() if den.sum() else float("nan"), bootstrap_ratio(num, den), int(den.sum()))


def same_answer(a: list[Instance], b: list[Instance]) -> bool:
    """Two answers agree: as many instances, paired one to one with the same label and mask IoU >= 0.5."""
    if len(a) != len(b):
        return False
    free = list(b)
    for inst in a:
        match = next((o for o in free if o.label.lower() == inst.label.lower() and iou(o.mask, inst.mask) >= 0.5), None)
        if match is None:
            return False
        free.remove(match)
    return True


class Evaluation:
    """Runs a session over one split and accumulates every metric. `predict` is the one place a
    model is asked; the known-answer tests replace it with perfect or empty answers."""

    def __init__(self, session: SegmentationSession | None, split: str, offset: int):
        self.session, self.split, self.offset = session, split, offset
        self.draw_scene, self.draw_clip = renderers(split)
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

    def threshold(self, task: str) -> float:
        """The score below which the session does not publish `task`'s answers."""
        return 0.5 if self.session is None else self.session.threshold(task)

    def published(self, instances: list[Instance], task: str) -> list[Instance]:
        """What the session publishes of one image's answers collected with every score (see `predict`): the
        same instances, since a threshold only drops answers (on a stream's first frame every track is new, and a
        new track needs the threshold; the tracker starts tracks above 0.2)."""
        threshold = self.threshold(task)
        return [inst for inst in instances if inst.score >= threshold]

    def _scene(self, stream: str, i: int) -> tuple[np.random.Generator, Scene]:
        rng = sample_rng(self.split, self.offset + i, STREAMS[stream])
        return rng, self.draw_scene(rng, *random_image_size(rng, SHORT_SIDE))

    def text_task(self, task: str, n: int, no_match_rate: float = 0.15) -> dict:
        """Referring or reasoning stills -> {"all": IoUAccumulator, kind: IoUAccumulator, "abstained":
        [bool per command with a target], "no_match": [bool per command without one], "records":
        [per command: target, top score, intersection, union of the top mask, ground-truth area]}."""
        out: dict = {"all": IoUAccumulator(), "abstained": [], "no_match": [], "records": []}
        for i in tqdm(range(n), desc=f"{self.split} {task}", leave=False):
            rng, scene = self._scene(task, i)
            wc = sample_command(rng, scene, task, no_match_rate)
            every = self.predict([scene], wc, all_scores=True)[0]
            instances = self.published(every, task)
            pred, gt = _top_mask(instances, scene.masks.shape[1:]), target_mask(scene, wc.targets)
            top = _top_mask(every, scene.masks.shape[1:])
            out["records"].append({"target": bool(wc.targets), "score": every[0].score if every else 0.0,
                                   "inter": int((top & gt).sum()), "union": int((top | gt).sum()),
                                   "gt": int(gt.sum())})
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
        """-> {"ap": MaskAP over all scores; "tp", "predicted", "truth": per-image counts at the
        threshold; "named": [per found object: its best-scoring mask carries its name]; "distinct",
        "true_distinct": per-image distinct labels published / true categories present; "kept_label":
        [per published instance of a list of 2+: the permuted list gives it the same label];
        "curve": {"tp", "predicted": per threshold of THRESHOLD_GRID, summed}}."""
        ap, tp, predicted, truth = MaskAP(), [], [], []
        named, distinct, true_distinct, kept_label = [], [], [], []
        curve = {"tp": np.zeros(len(THRESHOLD_GRID)), "predicted": np.zeros(len(THRESHOLD_GRID))}
        for i in tqdm(range(n), desc=f"{self.split} open_vocabulary", leave=False):
            rng, scene = self._scene("open_vocabulary", i)
            wc = sample_command(rng, scene, "open_vocabulary")
            instances = self.predict([scene], wc, all_scores=True)[0]
            index = {o.identity: k for k, o in enumerate(scene.objects)}
            gt = [(name, scene.masks[index[identity]]) for name, ids in zip(wc.command.categories, wc.category_targets)
                  for identity in ids]
            ap.add(gt, [(inst.label, inst.score, inst.mask) for inst in instances], scene.height, scene.width)
            published = self.published(instances, "open_vocabulary")
            kept = [(inst.label, inst.mask) for inst in published]
            tp.append(label_matches(gt, kept))
            predicted.append(len(kept))
            truth.append(len(gt))
            for k, t in enumerate(THRESHOLD_GRID):
                above = [(inst.label, inst.mask) for inst in instances if inst.score >= t]
                curve["tp"][k] += label_matches(gt, above)
                curve["predicted"][k] += len(above)
            for name, mask in gt:  # naming, apart from the threshold: the best mask found on the object
                found = [inst for inst in instances if iou(inst.mask, mask) >= 0.5]
                if found:
                    named.append(max(found, key=lambda inst: inst.score).label.lower() == name.lower())
            distinct.append(len({label.lower() for label, _ in kept}))
            true_distinct.append(len({name.lower() for name, _ in gt}))
            if len(wc.command.categories) > 1 and published:
                kept_label += self._permuted_labels(wc, scene, published, i)
            if i < 3:
                empty = np.zeros(scene.masks.shape[1:], bool)
                pred = np.any([m for _, m in kept], 0) if kept else empty
                gt_mask = np.any([m for _, m in gt], 0) if gt else empty
                self.examples.append(("open vocabulary: " + ", ".join(wc.command.categories), scene.image, pred, gt_mask))
        return {"ap": ap, "tp": tp, "predicted": predicted, "truth": truth, "named": named, "distinct": distinct,
                "true_distinct": true_distinct, "kept_label": kept_label, "curve": curve}

    def _permuted_labels(self, wc: WorldCommand, scene: Scene, published: list[Instance], i: int) -> list[bool]:
        """Ask again with the category list in another order: does each published instance keep its label?"""
        count = len(wc.command.categories)
        order = np.random.default_rng([self.offset + i, STREAMS["permutation"]]).permutation(count)
        if (order == np.arange(count)).all():
            order = np.roll(order, 1)
        permuted = replace(wc, command=replace(wc.command, categories=tuple(wc.command.categories[k] for k in order)),
                           category_targets=tuple(wc.category_targets[k] for k in order))
        again = self.predict([scene], permuted, all_scores=True)[0]
        kept = []
        for inst in published:
            best = max(again, key=lambda other: iou(other.mask, inst.mask), default=None)
            kept.append(best is not None and iou(best.mask, inst.mask) >= 0.5 and best.label.lower() == inst.label.lower())
        return kept

    def still_streams(self, task: str, n: int) -> list[bool]:
        """Still streams (one image STILL_FRAMES times) -> per stream that answered on its first or last
        frame: are the two answers the same? (A stream must not need frames to warm up.)"""
        agree = []
        for i in tqdm(range(n), desc=f"{self.split} still {task}", leave=False):
            rng, scene = self._scene(f"still_{task}", i)
            wc = sample_command(rng, scene, task, no_match_rate=0.0)
            results = self.predict([scene] * STILL_FRAMES, wc)  # at the session's threshold: what it publishes
            first, last = results[0], results[-1]
            if first or last:
                agree.append(same_answer(first, last))
        return agree
    def clips(self, stream: str, n: int, frames: int) -> dict:
        """-> {"jf": [per clip]} for referring and visual prompts (visual prompts: without the prompt
        frame); {"switches", "matched", "truth", "frames": [per clip]} for open vocabulary."""
        task = stream.removeprefix("clip_")
        out: dict = {"jf": [], "switches": [], "matched": [], "truth": [], "frames": [],
                     "curve": np.zeros(len(THRESHOLD_GRID))}
        prompt = task.startswith("visual_prompt")
        for i in tqdm(range(n), desc=f"{self.split} {stream}", leave=False):
            rng = sample_rng(self.split, self.offset + i, STREAMS[stream])
            clip = self.draw_clip(rng, *random_image_size(rng, SHORT_SIDE), frames=frames)
            wc = sample_command(rng, clip.frames[0], task, no_match_rate=0.0, static=True)
            # visual prompts: every score, for the curve (the same answers as at the session's threshold
            # while it is at most llm_rerun_score_threshold, which re-runs on low scores either way)
            every = self.predict(clip.frames, wc, all_scores=prompt)
            results = [self.published(r, "visual_prompt") for r in every] if prompt else every
            if task == "open_vocabulary":
                wanted = {identity for ids in wc.category_targets for identity in ids}
                gt = [{o.identity: m for o, m in zip(f.objects, f.masks) if o.identity in wanted and m.any()}
                      for f in clip.frames]
                pred = [{inst.id: inst.mask for inst in r} for r in results]
                switches, matched, truth = track_matches(gt, pred)
                out["switches"].append(switches), out["matched"].append(matched), out["truth"].append(truth)
                out["frames"].append(len(results))
            else:
                first = 1 if prompt else 0  # the prompt frame gives its answer away
                preds = [_top_mask(r, f.masks.shape[1:]) for r, f in zip(results, clip.frames)][first:]
                gts = [target_mask(f, wc.targets) for f in clip.frames][first:]
                out["jf"].append(j_and_f(preds, gts)[0])
                if prompt:
                    for k, t in enumerate(THRESHOLD_GRID):
                        above = [_top_mask([x for x in r if x.score >= t], f.masks.shape[1:])
                                 for r, f in zip(every, clip.frames)][first:]
                        out["curve"][k] += j_and_f(above, gts)[0]
        return out

    def _saved(self, metrics: dict) -> None:
        if self.progress_path is not None:  # a long run that is stopped keeps what it measured
            self.progress_path.parent.mkdir(parents=True, exist_ok=True)
            self.progress_path.write_text(json.dumps({"split": self.split, "metrics": metrics}, indent=1))

    def run(self, samples: int, clips: int, frames: int, still: int = 50) -> dict:
        """Every metric -> the report (JSON-ready)."""
        metrics: dict[str, dict] = {}
        per_kind: dict[str, dict] = {}
        curves: dict = {"thresholds": list(THRESHOLD_GRID)}
        abstained, no_match = [], []
        for task, kinds in (("referring", REFERRING_KINDS), ("reasoning", REASONING_KINDS)):
            r = self.text_task(task, samples)
            curves[task] = r["records"]
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
        metrics["open_vocabulary_precision"] = _ratio_stat(ov["tp"], ov["predicted"])
        metrics["open_vocabulary_recall"] = _ratio_stat(ov["tp"], ov["truth"])
        metrics["open_vocabulary_label_accuracy"] = _mean_stat(ov["named"])
        metrics["open_vocabulary_distinct_labels"] = _ratio_stat(ov["distinct"], ov["true_distinct"])
        metrics["open_vocabulary_permutation_consistency"] = _mean_stat(ov["kept_label"])
        curves["open_vocabulary"] = {"tp": ov["curve"]["tp"].tolist(), "predicted": ov["curve"]["predicted"].tolist(),
                                     "truth": int(np.sum(ov["truth"]))}
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
        prompt_curve, prompt_clips = np.zeros(len(THRESHOLD_GRID)), 0
        for kind in ("box", "point"):
            r = self.clips(f"clip_visual_prompt_{kind}", clips, frames)
            metrics[f"visual_prompt_{kind}_jf"] = _mean_stat(r["jf"])
            prompt_curve, prompt_clips = prompt_curve + r["curve"], prompt_clips + len(r["jf"])
            self._saved(metrics)
        curves["visual_prompt"] = {"jf": (prompt_curve / max(prompt_clips, 1)).tolist(), "clips": prompt_clips}
        for task in STILL_TASKS:
            metrics[f"first_frame_agreement_{task}"] = _mean_stat(self.still_streams(task, still))
            self._saved(metrics)
        thresholds = {task: self.threshold(task) for task in STILL_TASKS}
        return report_of(self.split, self.offset, samples, clips, frames, metrics, per_kind,
                         float(np.median(self.frame_ms)) if self.frame_ms else float("nan"), still, thresholds, curves)


def passed(metrics: dict[str, dict]) -> dict[str, bool]:
    """Each target met by its point estimate (paired targets need their partner too; NaN fails)."""
    ok = {}
    for key, (threshold, how) in TARGETS.items():
        v = metrics[key]["value"]
        if how == "near":
            ok[key] = bool(abs(v - threshold) <= NEAR * threshold)
        else:
            ok[key] = bool(v >= threshold if how == "min" else v <= threshold)  # NaN compares False
    for key, partner in PAIRED.items():
        ok[key] = ok[key] and ok[partner]
    return ok


def report_of(split: str, offset: int, samples: int, clips: int, frames: int, metrics: dict, per_kind: dict,
              median_ms: float, still: int = 0, thresholds: dict | None = None, curves: dict | None = None) -> dict:
    report = {"split": split, "renderer": "shifted (world/shifted.py)" if split == "shifted" else "training generator",
              "seed_offset": offset, "samples_per_task": samples, "clips_per_task": clips, "frames_per_clip": frames,
              "still_streams_per_task": still, "image_short_side": list(SHORT_SIDE), "median_frame_ms": median_ms,
              "score_thresholds": thresholds or {}, "metrics": metrics, "per_kind": per_kind,
              "passed": passed(metrics), "curves": curves or {}}
    report.update({k: m["value"] for k, m in metrics.items()})  # flat values: report["referring_ciou"]
    return report


def evaluate(session: SegmentationSession, split: str = "test", offset: int = 0, samples: int = 200,
             clips: int = 32, frames: int = 16, out: Path | None = None, still: int = 50) -> dict:
    """Every metric on `samples` stills per task, `clips` clips per video task and `still` still
    streams per task of one split."""
    ev = Evaluation(session, split, offset)
    ev.progress_path = None if out is None else out / "eval_progress.json"
    report = ev.run(samples, clips, frames, still)
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


GRID_COLUMNS = ("prediction (the model's answer, cyan)", "ground truth (magenta)")
CAPTION_PX = 18


def _caption(text: str, width: int, background: int = 255) -> np.ndarray:
    strip = np.full((CAPTION_PX, width, 3), background, np.uint8)
    cv2.putText(strip, text[:90], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255 - background,) * 3, 1, cv2.LINE_AA)
    return strip


def picture_grid(examples, path: Path) -> None:
    """Rows of (prediction | ground truth) with the command as a caption, under a header naming
    the two columns; RGB PNG."""
    rows = []
    for title, image, pred, gt in examples:
        pair = np.concatenate([_overlay(image, pred, (0, 255, 255)), _overlay(image, gt, (255, 0, 255))], 1)
        rows.append(np.concatenate([_caption(title, pair.shape[1]), pair], 0))
    if rows:
        half = rows[0].shape[1] // 2
        header = np.concatenate([_caption(name, half, background=40) for name in GRID_COLUMNS], 1)
        cv2.imwrite(str(path), np.concatenate([header, *rows], 0)[..., ::-1])


def _cell(m: dict) -> str:
    return f"{m['value']:.3f} [{m['low']:.2f}, {m['high']:.2f}]"


def markdown(report: dict) -> str:
    m = report["metrics"]
    lines = [f"# Evaluation on split `{report['split']}` ({report['renderer']}, seed offset {report['seed_offset']})",
             "", f"{report['samples_per_task']} images per task, {report['clips_per_task']} clips of "
             f"{report['frames_per_clip']} frames per video task, short image side {report['image_short_side']} px; "
             f"{report.get('still_streams_per_task', 0)} still streams per task; "
             f"median {report['median_frame_ms']:.0f} ms per frame. Score thresholds: "
             + ", ".join(f"{k} {v:g}" for k, v in report.get("score_thresholds", {}).items())
             + ". Values with 95% bootstrap intervals; n = commands, instances, clips or streams behind each.", "",
             "| metric | value [95% interval] | n | target | met |", "|---|---|---|---|---|"]
    for key in REPORT_ORDER:
        target = TARGETS.get(key)
        goal = "" if target is None else {"min": "≥ ", "max": "≤ ", "near": f"±{NEAR:.0%} of "}[target[1]] + f"{target[0]:g}"
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
    p.add_argument("--still", type=int, default=50, help="still streams per task (first-frame agreement)")
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
                          args.frames, Path(args.out) / split, args.still)
        print(markdown(report))
        print(f"split {split}: {time.perf_counter() - start:.0f} s", flush=True)
        reports.append(report)
    return reports


if __name__ == "__main__":
    main()
