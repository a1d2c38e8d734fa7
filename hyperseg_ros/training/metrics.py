"""Segmentation metrics of the evaluation: cIoU / gIoU, J&F, identity switches, mask AP (COCOeval).

Masks are [H,W] bool numpy arrays at image resolution. Conventions follow the benchmarks the
paper reports: cIoU = cumulative intersection / cumulative union (RefCOCO), gIoU = mean per-sample
IoU with an empty prediction of an empty target counting 1 (ReasonSeg), J&F = mean of region
similarity J and boundary F-measure with a tolerance of 0.8% of the image diagonal (DAVIS).
"""
from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
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

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        self.intersection += int(np.logical_and(pred, gt).sum())
        self.union += int(np.logical_or(pred, gt).sum())
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


def identity_switches(gt_frames: Sequence[dict[int, np.ndarray]], pred_frames: Sequence[dict[int, np.ndarray]],
                      iou_threshold: float = 0.5) -> int:
    """Identity switches in one clip (CLEAR-MOT style): per frame, ground-truth objects are matched
    one-to-one to predicted instances (Hungarian on IoU, IoU >= threshold); a switch is counted when
    an object's matched predicted id differs from the id it was last matched to.

    gt_frames / pred_frames: per frame {identity or instance id: mask [H,W] bool}.
    """
    last: dict[int, int] = {}
    switches = 0
    for gt, pred in zip(gt_frames, pred_frames):
        gids, pids = list(gt), list(pred)
        if not gids or not pids:
            continue
        ious = np.array([[iou(pred[p], gt[g]) for p in pids] for g in gids])
        rows, cols = linear_sum_assignment(-ious)
        for r, c in zip(rows, cols):
            if ious[r, c] < iou_threshold:
                continue
            g, p = gids[r], pids[c]
            if g in last and last[g] != p:
                switches += 1
            last[g] = p
    return switches


def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a [H,W] bool mask (counts as str, JSON-ready)."""
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

    def _category(self, name: str) -> int:
        return self.categories.setdefault(name.lower(), len(self.categories) + 1)

    def add(self, gt: Sequence[tuple[str, np.ndarray]], pred: Sequence[tuple[str, float, np.ndarray]],
            height: int, width: int) -> None:
        """gt: (category, mask) per ground-truth instance; pred: (category, score, mask) per prediction."""
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "height": height, "width": width})
        for name, mask in gt:
            rle = encode_mask(mask)
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id,
                                     "category_id": self._category(name), "segmentation": rle,
                                     "area": float(mask.sum()), "bbox": list(mask_utils.toBbox(rle)), "iscrowd": 0})
        for name, score, mask in pred:
            self.detections.append({"image_id": image_id, "category_id": self._category(name),
                                    "segmentation": encode_mask(mask), "score": float(score)})

    def evaluate(self) -> dict[str, float]:
        """-> {"mAP": AP@[.5:.95], "AP50": AP@.5}; NaN without any ground truth."""
        if not self.annotations:
            return {"mAP": float("nan"), "AP50": float("nan")}
        gt = COCO()
        gt.dataset = {"images": self.images, "annotations": self.annotations,
                      "categories": [{"id": i, "name": n} for n, i in self.categories.items()]}
        with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints its own tables
            gt.createIndex()
            dt = gt.loadRes(self.detections) if self.detections else COCO()
            if not self.detections:
                return {"mAP": 0.0, "AP50": 0.0}
            ev = COCOeval(gt, dt, iouType="segm")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return {"mAP": float(max(ev.stats[0], 0.0)), "AP50": float(max(ev.stats[1], 0.0))}
