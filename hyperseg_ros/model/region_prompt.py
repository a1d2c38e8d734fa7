"""Visual prompts (boxes, points) -> one region token per object.

A box fills its rectangle and a point becomes a disc (radius `region_point_radius` image pixels,
as released), drawn on the SigLIP input. The region's cells on the SigLIP patch grid are
de-duplicated and the projected SigLIP features are bilinearly sampled at them and averaged. The
release samples 512 random points among those cells; at inference every covered cell is used
once instead, which is that sample's expectation and is deterministic.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def region_masks(boxes: Sequence[Sequence[float]], points: Sequence[Sequence[float]],
                 image_size: tuple[int, int], size: int, point_radius: float) -> np.ndarray:
    """Boxes (x, y, w, h) then points (x, y), image pixels -> masks [K, size, size] bool on the
    square SigLIP input (the image resized to size x size without keeping its aspect)."""
    height, width = image_size
    sx, sy = size / width, size / height
    masks = np.zeros((len(boxes) + len(points), size, size), dtype=np.uint8)
    for k, (x, y, w, h) in enumerate(boxes):
        x0, y0 = int(np.floor(x * sx)), int(np.floor(y * sy))
        x1, y1 = max(x0 + 1, int(np.ceil((x + w) * sx))), max(y0 + 1, int(np.ceil((y + h) * sy)))
        masks[k, max(0, y0):min(size, y1), max(0, x0):min(size, x1)] = 1
    for j, (x, y) in enumerate(points):
        k = len(boxes) + j
        centre = (int(round(x * sx)), int(round(y * sy)))
        axes = (max(1, int(round(point_radius * sx))), max(1, int(round(point_radius * sy))))
        cv2.ellipse(masks[k], centre, axes, 0, 0, 360, 1, thickness=-1)
        masks[k, min(size - 1, max(0, centre[1])), min(size - 1, max(0, centre[0]))] = 1
    return masks.astype(bool)


def region_sample_points(masks: np.ndarray, grid: int) -> list[np.ndarray]:
    """masks [K, s, s] bool -> per region the covered SigLIP cells as (x, y) in [-1, 1]
    (align_corners convention: cell i sits at -1 + 2i/(grid-1)); never empty."""
    points = []
    for mask in masks:
        covered = cv2.resize(mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA) > 0
        if not covered.any():  # a sliver thinner than a cell: keep the cell of its centre
            ys, xs = np.nonzero(mask)
            covered[int(ys.mean() * grid / mask.shape[0]), int(xs.mean() * grid / mask.shape[1])] = True
        ys, xs = np.nonzero(covered)
        scale = 2.0 / max(grid - 1, 1)
        points.append(np.stack([xs * scale - 1.0, ys * scale - 1.0], axis=1).astype(np.float32))
    return points


def region_points(boxes: Sequence[Sequence[float]], points: Sequence[Sequence[float]],
                  image_size: tuple[int, int], config) -> list[torch.Tensor]:
    """What the model takes for a visual prompt: boxes (x, y, w, h) then points (x, y) in image
    pixels of a `image_size` (height, width) image -> per region the sample points [n_k, 2] float32
    (x, y) in [-1, 1] on the SigLIP grid. config: HyperSegConfig."""
    masks = region_masks(boxes, points, image_size, config.vision_image_size, config.region_point_radius)
    return [torch.from_numpy(p) for p in region_sample_points(masks, config.vision_grid)]


def region_tokens(visual: torch.Tensor, points: Sequence[torch.Tensor | np.ndarray]) -> torch.Tensor:
    """visual: projected SigLIP tokens [V = g*g, D] of one image; points: per region [n_k, 2] (x, y)
    in [-1, 1] -> region tokens [K, D] (mean of bilinear samples)."""
    grid = int(round(visual.shape[0] ** 0.5))
    feature_map = visual.transpose(0, 1).reshape(1, -1, grid, grid)  # [1, D, g, g]
    tokens = []
    for p in points:
        where = torch.as_tensor(p).to(visual.device, visual.dtype).view(1, 1, -1, 2)
        sampled = F.grid_sample(feature_map, where, mode="bilinear", align_corners=True)  # [1, D, 1, n]
        tokens.append(sampled[0, :, 0].mean(dim=-1))
    return torch.stack(tokens) if tokens else visual.new_zeros((0, visual.shape[1]))
