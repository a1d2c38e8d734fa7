"""Segmentation metrics of the evaluation: cIoU / gIoU, J&F, identity switches with coverage, mask AP
(COCOeval), precision / recall of labelled instances, and 95% bootstrap intervals.

pycocotools is imported only when mask AP is computed: where it is not installed (the GPU machine),
`MaskAP` answers NaN and says why in `MaskAP.skipped` (and once on stderr); every other metric works.

Masks are [H,W] bool numpy arrays at image resolution. Conventions follow the benchmarks the
paper reports: cIoU = cumulative intersection / cumulative union (RefCOCO), gIoU = mean per-sample
IoU with an empty prediction of an empty target counting 1 (ReasonSeg), J&F = mean of region
similarity J and boundary F-measure with a tolerance of 0.8% of the image diagonal (DAVIS).
"""
from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two masks; 1.0 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


class IoUAccumulator:
    """cIoU and gIoU over a stream of (prediction, target) mask pairs."""

    def __init__(self):
        self.intersection = 0
        self.union = 0
        self.per_sample: list[float] = []
        self.intersections: list[int] = []  # per sample, for intervals
        self.unions: list[int] = []

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        i, u = int(np.logical_and(pred, gt).sum()), int(np.logical_or(pred, gt).sum())
        self.intersection += i
        self.union += u
        self.intersections.append(i)
        self.unions.append(u)
        self.per_sample.append(iou(pred, gt))

    @property
    def ciou(self) -> float:
        return self.intersection / self.union if self.union else float("nan")

    @property
    def giou(self) -> float:
        return float(np.mean(self.per_sample)) if self.per_sample else float("nan")


def _boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel inner boundary of a mask (mask minus its 3x3 erosion), bool."""
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)).astype(bool)


def boundary_f(pred: np.ndarray, gt: np.ndarray, tolerance: float = 0.008) -> float:
    """DAVIS boundary F-measure: boundary pixels matched within tolerance x image diagonal."""
    bp, bg = _boundary(pred), _boundary(gt)
    if not bp.any() and not bg.any():
        return 1.0
    if not bp.any() or not bg.any():
        return 0.0
    radius = max(1, int(np.ceil(tolerance * np.hypot(*pred.shape))))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    gt_near = cv2.dilate(bg.astype(np.uint8), disc).astype(bool)
    pred_near = cv2.dilate(bp.astype(np.uint8), disc).astype(bool)
    precision = (bp & gt_near).sum() / bp.sum()
    recall = (bg & pred_near).sum() / bg.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def j_and_f(preds: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> tuple[float, float, float]:
    """One object through a clip: per-frame masks -> (J&F, J, F), each the mean over frames."""
    j = float(np.mean([iou(p, g) for p, g in zip(preds, gts)]))
    f = float(np.mean([boundary_f(p, g) for p, g in zip(preds, gts)]))
    return (j + f) / 2, j, f


def track_matches(gt_frames: Sequence[dict[int, np.ndarray]], pred_frames: Sequence[dict[int, np.ndarray]],
                  iou_threshold: float = 0.5) -> tuple[int, int, int]:
    """Identity switches, matched object-frames and ground-truth object-frames of one clip
    (CLEAR-MOT style): per frame, ground-truth objects are matched one-to-one to predicted instances
    (Hungarian on IoU, IoU >= threshold); a switch is counted when an object's matched predicted id
    differs from the id it was last matched to. Coverage = matched / ground truth: a model that
    finds nothing makes no switches, and coverage shows it.

    gt_frames / pred_frames: per frame {identity or instance id: mask [H,W] bool}.
    """
    last: dict[int, int] = {}
    switches = matched = total = 0
    for gt, pred in zip(gt_frames, pred_frames):
        gids, pids = list(gt), list(pred)
        total += len(gids)
        if not gids or not pids:
            continue
        ious = np.array([[iou(pred[p], gt[g]) for p in pids] for g in gids])
        rows, cols = linear_sum_assignment(-ious)
        for r, c in zip(rows, cols):
            if ious[r, c] < iou_threshold:
                continue
            matched += 1
            g, p = gids[r], pids[c]
            if g in last and last[g] != p:
                switches += 1
            last[g] = p
    return switches, matched, total


def identity_switches(gt_frames: Sequence[dict[int, np.ndarray]], pred_frames: Sequence[dict[int, np.ndarray]],
                      iou_threshold: float = 0.5) -> int:
    """Identity switches of one clip (see track_matches)."""
    return track_matches(gt_frames, pred_frames, iou_threshold)[0]


def label_matches(gt: Sequence[tuple[str, np.ndarray]], pred: Sequence[tuple[str, np.ndarray]],
                  iou_threshold: float = 0.5) -> int:
    """True positives of one image: predictions matched one-to-one to ground-truth instances of the
    same label (case-insensitive) with IoU >= threshold (Hungarian on IoU)."""
    if not gt or not pred:
        return 0
    ious = np.array([[iou(pm, gm) if pl.lower() == gl.lower() else 0.0 for pl, pm in pred] for gl, gm in gt])
    rows, cols = linear_sum_assignment(-ious)
    return int(sum(ious[r, c] >= iou_threshold for r, c in zip(rows, cols)))


def bootstrap_ratio(numerators: Sequence[float], denominators: Sequence[float], resamples: int = 2000,
                    seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of sum(num) / sum(den) over items resampled with
    replacement (cIoU, rates, precision, recall; a mean when every denominator is 1)."""
    num, den = np.asarray(numerators, np.float64), np.asarray(denominators, np.float64)
    if len(num) == 0:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(num), (resamples, len(num)))
    d = den[idx].sum(1)
    stats = np.where(d > 0, num[idx].sum(1) / np.where(d > 0, d, 1), np.nan)
    stats = stats[~np.isnan(stats)]
    if len(stats) == 0:
        return float("nan"), float("nan")
    return float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))


def bootstrap_mean(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of a mean."""
    return bootstrap_ratio(values, np.ones(len(values)), resamples, seed)


def pycocotools_missing() -> str | None:
    """Why mask AP cannot be computed here (None when pycocotools imports)."""
    try:
        import pycocotools.cocoeval  # noqa: F401
    except ImportError as err:
        return f"mask AP skipped: pycocotools is not installed ({err})"
    return None


_warned_ap = False


def _ap_skipped() -> str | None:
    global _warned_ap
    reason = pycocotools_missing()
    if reason and not _warned_ap:
        print(f"metrics: {reason}; AP50 and mAP are NaN", file=sys.stderr)
        _warned_ap = True
    return reason


def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a [H,W] bool mask (counts as str, JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


class MaskAP:
    """Mask AP over open-vocabulary samples with pycocotools' COCOeval (iouType "segm").

    Categories are global names ("red circle", "star", "yellow"); a sample only annotates and
    predicts the categories its command listed, so unlisted categories never count against it.
    """

    def __init__(self):
        self.categories: dict[str, int] = {}
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.detections: list[dict] = []
        self.skipped = _ap_skipped()  # why AP is NaN here (pycocotools missing), else None

    def _category(self, name: str) -> int:
        return self.categories.setdefault(name.lower(), len(self.categories) + 1)

    def add(self, gt: Sequence[tuple[str, np.ndarray]], pred: Sequence[tuple[str, float, np.ndarray]],
            height: int, width: int) -> None:
        """gt: (category, mask) per ground-truth instance; pred: (category, score, mask) per prediction."""
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "height": height, "width": width})
        if self.skipped:
            return
        from pycocotools import mask as mask_utils

        for name, mask in gt:
            rle = encode_mask(mask)
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id,
                                     "category_id": self._category(name), "segmentation": rle,
                                     "area": float(mask.sum()), "bbox": list(mask_utils.toBbox(rle)), "iscrowd": 0})
        for name, score, mask in pred:
            self.detections.append({"image_id": image_id, "category_id": self._category(name),
                                    "segmentation": encode_mask(mask), "score": float(score)})

    def resampled(self, image_ids: Sequence[int]) -> MaskAP:
        """A MaskAP over the given images (ids from 1, repeats allowed: a bootstrap resample)."""
        out = MaskAP()
        out.categories = dict(self.categories)
        anns: dict[int, list[dict]] = {}
        dets: dict[int, list[dict]] = {}
        for a in self.annotations:
            anns.setdefault(a["image_id"], []).append(a)
        for d in self.detections:
            dets.setdefault(d["image_id"], []).append(d)
        for image_id in image_ids:
            new_id = len(out.images) + 1
            out.images.append({**self.images[image_id - 1], "id": new_id})
            for a in anns.get(image_id, []):
                out.annotations.append({**a, "id": len(out.annotations) + 1, "image_id": new_id})
            out.detections += [{**d, "image_id": new_id} for d in dets.get(image_id, [])]
        return out

    def bootstrap(self, resamples: int = 100, seed: int = 0) -> dict[str, tuple[float, float]]:
        """95% percentile-bootstrap intervals of mAP and AP50 over images."""
        rng = np.random.default_rng(seed)
        n = 0 if self.skipped else len(self.images)
        runs = [self.resampled(rng.integers(1, n + 1, n).tolist()).evaluate() for _ in range(resamples)] if n else []
        out = {}
        for key in ("mAP", "AP50"):
            vals = np.array([r[key] for r in runs], np.float64)
            vals = vals[~np.isnan(vals)]
            out[key] = (float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))) if len(vals) else (
                float("nan"), float("nan"))
        return out

    def evaluate(self) -> dict[str, float]:
        """-> {"mAP": AP@[.5:.95], "AP50": AP@.5}; NaN without any ground truth (or without pycocotools)."""
        if not self.annotations or self.skipped:
            return {"mAP": float("nan"), "AP50": float("nan")}
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        gt = COCO()
        gt.dataset = {"images": self.images, "annotations": self.annotations,
                      "categories": [{"id": i, "name": n} for n, i in self.categories.items()]}
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its own tables
            gt.createIndex()
            dt = gt.loadRes([dict(d) for d in self.detections]) if self.detections else COCO()  # loadRes edits
            if not self.detections:
                return {"mAP": 0.0, "AP50": 0.0}
            ev = COCOeval(gt, dt, iouType="segm")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return {"mAP": float(max(ev.stats[0], 0.0)), "AP50": float(max(ev.stats[1], 0.0))}
