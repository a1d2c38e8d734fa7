"""Visual prompts (boxes, points) -> one region token per object.

A box fills its rectangle and a point becomes a disc (radius `region_point_radius` image pixels,
as released), drawn on the SigLIP input. The region's cells on the SigLIP patch grid are
de-duplicated and the projected SigLIP features are bilinearly sampled at them and averaged. The
release samples 512 random points among those cells; at inference every covered cell is used
once instead, which is that sample's expectation and is deterministic.

As released (`region_grid="release"`, `image_resize="pil"`): the prompt is drawn at image resolution
and resized to the SigLIP input with PIL bicubic; cell k of a g-cell grid holds the pixels p with
floor(p * g / s) = k and is sampled at k / g of the map (align_corners), i.e. 26k/27 in cells for 3b.
The embedded model draws on the SigLIP input directly and samples cell centres.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def region_masks(boxes: Sequence[Sequence[float]], points: Sequence[Sequence[float]],
                 image_size: tuple[int, int], size: int, point_radius: float, released: bool = False) -> np.ndarray:
    """Boxes (x, y, w, h) then points (x, y), image pixels -> masks [K, size, size] bool on the
    square SigLIP input (the image resized to size x size without keeping its aspect).
    released: drawn at image resolution and resized with PIL bicubic, as the release's mapper does."""
    if released:
        full = image_region_masks(boxes, points, image_size, point_radius)
        resized = []
        for mask in full:
            small = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.BICUBIC)) > 0
            if not small.any():  # thinner than a SigLIP pixel: keep the pixel under its centre
                ys, xs = np.nonzero(mask)
                small[int(ys.mean() * size / mask.shape[0]), int(xs.mean() * size / mask.shape[1])] = True
            resized.append(small)
        return np.stack(resized) if resized else np.zeros((0, size, size), dtype=bool)
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


def image_region_masks(boxes: Sequence[Sequence[float]], points: Sequence[Sequence[float]],
                       image_size: tuple[int, int], point_radius: float) -> np.ndarray:
    """Boxes filled and points as discs (distance <= point_radius), at image resolution [K, H, W] bool."""
    height, width = image_size
    masks = np.zeros((len(boxes) + len(points), height, width), dtype=bool)
    for k, (x, y, w, h) in enumerate(boxes):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        x1, y1 = max(x0 + 1, int(np.ceil(x + w))), max(y0 + 1, int(np.ceil(y + h)))
        masks[k, max(0, y0):min(height, y1), max(0, x0):min(width, x1)] = True
    ys, xs = np.ogrid[:height, :width]
    for j, (x, y) in enumerate(points):
        k = len(boxes) + j
        masks[k] = np.hypot(xs - round(x), ys - round(y)) <= point_radius
        masks[k, min(height - 1, max(0, round(y))), min(width - 1, max(0, round(x)))] = True
    return masks


def region_sample_points(masks: np.ndarray, grid: int, released: bool = False) -> list[np.ndarray]:
    """masks [K, s, s] bool -> per region the covered SigLIP cells as (x, y) in [-1, 1]
    (align_corners convention: cell i sits at -1 + 2i/(grid-1)); never empty.
    released: the cells the release's region sampler keeps, at its positions (module docstring)."""
    if released:
        return [_released_cells(mask, grid) for mask in masks]
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


def _released_cells(mask: np.ndarray, grid: int) -> np.ndarray:
    """context_cluster.py's filter_repeat_point in float32: (p / s * g).int(), unique, / g, then 2x - 1."""
    where = torch.from_numpy(np.argwhere(mask))  # (y, x)
    if len(where) == 0:
        raise ValueError("a visual prompt covers no pixel of the SigLIP input")
    cells = torch.unique((where / torch.tensor(mask.shape) * grid).int(), dim=0) / grid
    return (2.0 * cells.flip(1) - 1.0).numpy().astype(np.float32)


def region_points(boxes: Sequence[Sequence[float]], points: Sequence[Sequence[float]],
                  image_size: tuple[int, int], config) -> list[torch.Tensor]:
    """What the model takes for a visual prompt: boxes (x, y, w, h) then points (x, y) in image
    pixels of a `image_size` (height, width) image -> per region the sample points [n_k, 2] float32
    (x, y) in [-1, 1] on the SigLIP grid, by the model's conventions. config: HyperSegConfig."""
    masks = region_masks(boxes, points, image_size, config.vision_image_size, config.region_point_radius,
                         released=config.image_resize == "pil")
    return [torch.from_numpy(p) for p in region_sample_points(masks, config.vision_grid,
                                                               released=config.region_grid == "release")]


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
