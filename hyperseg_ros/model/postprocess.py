"""Post-processing: stride-4 mask logits of the padded square input -> instances of the original image.

The release upsamples the logits to the padded input, crops the valid (unpadded) region and resizes
it to the original HxW, then binarises at logit > 0 (reference §1.1). Here the three steps are one
bilinear `F.interpolate` of the whole padded map to the size at which its valid region is exactly
HxW, followed by a crop: the same pixel-centre geometry with ~3x fewer pixels at 640x480, and only
for the instances that are kept.

Score (release rule): sigmoid(task logit) x mean sigmoid probability inside the binary mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Detections:
    """Kept instances, best first.

    indices: [N] int64 query index of each instance;  scores: [N] float32 in [0,1];
    masks: [N,H,W] bool at the original image size;  boxes: [N,4] int64 tight (x, y, w, h) pixels.
    """

    indices: torch.Tensor
    scores: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor


def upsample_masks(
    mask_logits: torch.Tensor, *, padded_size: tuple[int, int], valid_size: tuple[int, int], image_size: tuple[int, int]
) -> torch.Tensor:
    """mask_logits [N,h,w] at stride 4 of the padded input (padded_size (Hp,Wp) pixels, image content
    in the top-left valid_size (Hv,Wv), padding bottom/right) -> float32 logits [N,H,W] of the
    original image_size (H,W)."""
    height, width = image_size
    if mask_logits.shape[0] == 0:
        return mask_logits.new_zeros((0, height, width), dtype=torch.float32)
    # Scale the whole padded map so that its valid region measures exactly HxW; the explicit
    # scale (not a rounded size) keeps the pixel-centre mapping of upsample-crop-resize.
    scale = (
        padded_size[0] / mask_logits.shape[-2] * height / valid_size[0],
        padded_size[1] / mask_logits.shape[-1] * width / valid_size[1],
    )
    logits = F.interpolate(
        mask_logits[None].float(), scale_factor=scale, mode="bilinear", align_corners=False,
        recompute_scale_factor=False,
    )[0]
    return logits[:, :height, :width]


def upsample_masks_as_released(
    mask_logits: torch.Tensor, *, padded_size: tuple[int, int], valid_size: tuple[int, int], image_size: tuple[int, int]
) -> torch.Tensor:
    """The release's two steps (llava_phi eval_seg + detectron2 sem_seg_postprocess): bilinear to the
    padded input, crop the valid region, bilinear to the image -> float32 logits [N,H,W]."""
    if mask_logits.shape[0] == 0:
        return mask_logits.new_zeros((0, *image_size), dtype=torch.float32)
    padded = F.interpolate(mask_logits[None].float(), size=padded_size, mode="bilinear", align_corners=False)
    valid = padded[:, :, : valid_size[0], : valid_size[1]]
    return F.interpolate(valid, size=image_size, mode="bilinear", align_corners=False)[0]


def mask_scores(task_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """task_logits [N], mask_logits [N,H,W] -> [N] sigmoid(task) x mean probability inside (logit > 0)."""
    logits = mask_logits.flatten(1).float()
    inside = (logits > 0).float()
    probability = logits.sigmoid()
    mean_inside = (probability * inside).sum(1) / (inside.sum(1) + 1e-6)
    return task_logits.float().sigmoid() * mean_inside


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """masks [N,H,W] bool -> [N,4] int64 tight (x, y, w, h); all zeros for an empty mask."""
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.int64, device=masks.device)
    rows, cols = masks.any(2), masks.any(1)  # [N,H], [N,W]
    height, width = masks.shape[1:]
    ys = torch.arange(height, device=masks.device)
    xs = torch.arange(width, device=masks.device)
    y0 = torch.where(rows, ys, height).amin(1)
    y1 = torch.where(rows, ys, -1).amax(1)
    x0 = torch.where(cols, xs, width).amin(1)
    x1 = torch.where(cols, xs, -1).amax(1)
    boxes = torch.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1], 1)
    return torch.where(rows.any(1, keepdim=True), boxes, 0).to(torch.int64)


def postprocess(
    task_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    *,
    padded_size: tuple[int, int],
    valid_size: tuple[int, int],
    image_size: tuple[int, int],
    score_threshold: float = 0.5,
    max_instances: int = 20,
    scores_at_image_resolution: bool = False,
) -> Detections:
    """One image, one prompt: task_logits [Q] (referring, one category or one region logit per query),
    mask_logits [Q,h,w] stride 4 -> the instances whose score >= score_threshold (at most max_instances).

    Scores are computed on the stride-4 logits of the valid region (the release computes them after
    upsampling; the difference is interpolation-level), so only the kept instances are upsampled.
    A query whose sigmoid(task) < score_threshold cannot pass (the mask factor is <= 1) and is skipped.
    scores_at_image_resolution: score every candidate after the release's upsampling instead (exact
    release numbers; costs one padded-size map per candidate).
    """
    task_prob = task_logits.float().sigmoid()
    candidates = torch.nonzero(task_prob >= score_threshold).flatten()
    if scores_at_image_resolution:
        logits = upsample_masks_as_released(
            mask_logits[candidates], padded_size=padded_size, valid_size=valid_size, image_size=image_size)
        scores = mask_scores(task_logits[candidates], logits)
        keep = torch.nonzero((scores >= score_threshold) & (logits > 0).flatten(1).any(1)).flatten()
        keep = keep[scores[keep].argsort(descending=True)][:max_instances]
        masks = logits[keep] > 0
        return Detections(indices=candidates[keep], scores=scores[keep], masks=masks, boxes=mask_boxes(masks))
    rows = math.ceil(valid_size[0] * mask_logits.shape[-2] / padded_size[0])
    cols = math.ceil(valid_size[1] * mask_logits.shape[-1] / padded_size[1])
    valid_logits = mask_logits[candidates, :rows, :cols]
    scores = mask_scores(task_logits[candidates], valid_logits)
    keep = torch.nonzero((scores >= score_threshold) & (valid_logits > 0).flatten(1).any(1)).flatten()
    keep = keep[scores[keep].argsort(descending=True)][:max_instances]
    masks = upsample_masks(
        mask_logits[candidates[keep]], padded_size=padded_size, valid_size=valid_size, image_size=image_size
    ) > 0
    present = masks.flatten(1).any(1)  # a sliver can vanish at the original resolution
    keep, masks = keep[present], masks[present]
    return Detections(indices=candidates[keep], scores=scores[keep], masks=masks, boxes=mask_boxes(masks))
