"""Mask-shape encoder: what each query's own mask looks like, and how well each category's words fit it.

Not in the release (whose 3b config leaves it off: `mask_shape_size` 0). The embedded model's image side
does not see shapes: linear probes of an object's shape on its decoder query, or on any Swin or pixel-
decoder level averaged under its mask, sit at chance, while its colour reads at 0.91
(scripts/diagnose_shapes.py). A flat-coloured star and hexagon differ only in their outline, and the decoder
already says where each object is. So a square window is cut around each query's mask (its centroid, the box
head's size: the object centred, its aspect kept, its scale removed) from two sources: the mask's
probability and the pyramid input's pixels, which hold the outline at 4x the mask's resolution (a small
object is 3-6 mask cells wide). A small CNN reads the `size` x `size` window into a vector.

`membership` scores that vector against each open-vocabulary category's own words
(entity_recognition.class_word_projector): a logit that the object is what the name says (its shape, its
colour, or both). The name scorer (name_scorer.py) weighs it against the class head's answer.

It learns from windows of the true masks (training/train_mask_shape.py), not from the decoder's own masks
during training: those are poor for most matched queries early on, and on such windows the encoder learnt
nothing (CPU and GPU runs: the uniform answer, or a constant offset). Its `bias` starts high and its last
layer near zero: an untrained module finds that every name fits.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MARGIN = 1.2  # the window's side over the mask's longer side: the outline never touches the border
EXTENT_SHARE = 0.9  # mask_extent's central share of a mask's weight
TRUE_MASK_LOGIT = 6.0  # a true mask's inside as a logit: the confidence of a well-found object's mask
START_BIAS = 5.0  # log-sigmoid(5) = -0.007: an untrained module finds every name fits


def window_grid(mask_logits: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """mask_logits [B,Q,h,w] and boxes [B,Q,4] (cx, cy, w, h) in [0, 1] of the padded input (the box
    head's) -> grid_sample coordinates [B,Q,size,size,2] of a square window around each object, in any
    map aligned with that input (the pyramid pixels, the stride-4 masks). Its centre is the mask's
    centroid weighted by probability^4: a query's mask often has faint blobs on other objects (its
    extent would span the scene), and the box head places every box near the image's centre (it has
    learnt sizes, not places). Its side is the longer of the box's longer side and the mask's own extent
    (mask_extent), as in training, where the box is the true one: the box head learnt the sizes of the
    objects it was trained on and undershoots larger ones (a square 0.30 of the input wide gets a 0.21
    box, and a window that cuts its outline away)."""
    h, w = mask_logits.shape[-2:]
    weight = mask_logits.float().sigmoid().pow(4)
    mass = weight.sum((-2, -1)).clamp(min=1e-6)
    xs_cells = (torch.arange(w, device=mask_logits.device, dtype=torch.float32) + 0.5) / w
    ys_cells = (torch.arange(h, device=mask_logits.device, dtype=torch.float32) + 0.5) / h
    cx = (weight.sum(-2) * xs_cells).sum(-1) / mass
    cy = (weight.sum(-1) * ys_cells).sum(-1) / mass
    side = torch.maximum(torch.maximum(boxes[..., 2], boxes[..., 3]).float(), mask_extent(weight, mass))
    half = side.clamp(min=1e-3) * MARGIN  # in [-1, 1] units
    steps = (torch.arange(size, device=boxes.device, dtype=torch.float32) + 0.5) / size * 2 - 1  # cell centres
    xs = (cx * 2 - 1)[..., None] + half[..., None] * steps  # [B,Q,S]
    ys = (cy * 2 - 1)[..., None] + half[..., None] * steps
    return torch.stack(torch.broadcast_tensors(xs[..., None, :], ys[..., :, None]), dim=-1)


def mask_extent(weight: torch.Tensor, mass: torch.Tensor, share: float = EXTENT_SHARE) -> torch.Tensor:
    """weight [B,Q,h,w] (window_grid's), mass [B,Q] its sum -> [B,Q] the longer side, in [0, 1] of the input,
    of the span holding the central `share` of the weight along each axis, over `share` (a uniform object's
    whole side). A faint blob elsewhere holds a few percent of the weight: it does not widen the span."""
    low, high = (1 - share) / 2, (1 + share) / 2
    sides = []
    for marginal in (weight.sum(-2), weight.sum(-1)):  # along x, along y: [B,Q,cells]
        p = marginal / mass[..., None]
        before = p.cumsum(-1) - p  # the weight left of each cell
        cells = p.shape[-1]

        def at(q: float) -> torch.Tensor:  # where the weight to the left reaches q (mass uniform within a cell)
            return ((q - before) / p.clamp(min=1e-12)).clamp(0, 1).sum(-1) / cells

        sides.append((at(high) - at(low)) / share)
    return torch.maximum(*sides)


def sample_windows(maps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """maps [B,C,H,W], grid [B,Q,S,S,2] -> windows [B,Q,C,S,S] (bilinear, zeros outside)."""
    batch, queries, size = grid.shape[:3]
    out = F.grid_sample(maps.float(), grid.reshape(batch, queries * size, size, 2), mode="bilinear",
                        padding_mode="zeros", align_corners=False)  # [B,C,Q*S,S]
    return out.reshape(batch, -1, queries, size, size).transpose(1, 2)


def true_mask_logits(area: torch.Tensor) -> torch.Tensor:
    """Training targets' stride-4 area fractions [..., h, w] -> logits as the decoder's masks carry them."""
    return (area.float() * 2 - 1) * TRUE_MASK_LOGIT


class MaskShapeEncoder(nn.Module):
    """mask logits [B,Q,h,w], pyramid pixels [B,3,H,W] and boxes [B,Q,4] -> [B,Q,D] shape vectors (near zero at first)."""

    def __init__(self, hidden_dim: int, size: int = 16, channels: int = 32):
        super().__init__()
        self.size = size
        self.cnn = nn.Sequential(  # input: the mask's probability and the pixels' 3 channels
            nn.Conv2d(4, channels, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * channels, 2 * channels, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.proj = nn.Sequential(nn.Linear(8 * channels, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim))
        # near zero, not zero: a model gaining this module answers almost as before, and the layers behind
        # this one learn from the first step (behind a zero layer they get no gradient at all)
        nn.init.normal_(self.proj[-1].weight, std=0.01)
        nn.init.zeros_(self.proj[-1].bias)
        self.bias = nn.Parameter(torch.tensor(START_BIAS))

    def forward(self, mask_logits: torch.Tensor, pixels: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        batch, queries = mask_logits.shape[:2]
        grid = window_grid(mask_logits, boxes.detach(), self.size)
        own_mask = sample_windows(mask_logits.float().sigmoid().flatten(0, 1)[:, None], grid.flatten(0, 1)[:, None])
        windows = torch.cat([own_mask.reshape(batch, queries, 1, self.size, self.size),
                             sample_windows(pixels, grid)], dim=2)
        codes = self.cnn(windows.reshape(batch * queries, 4, self.size, self.size).to(self.proj[-1].weight.dtype))
        return self.proj(codes).reshape(batch, queries, -1)

    def membership(self, vectors: torch.Tensor, names: torch.Tensor) -> torch.Tensor:
        """vectors [..., Q, D] and names [..., N, D] -> [..., Q, N] logits that each object is what each name says.
        The names are unit vectors (only their direction says what they name); a vector's length is its confidence."""
        return vectors @ F.normalize(names, dim=-1).transpose(-1, -2) + self.bias
