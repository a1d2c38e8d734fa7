"""Mask pieces: a query whose mask falls apart into separate blobs offers each blob as an answer too. Not in the release.

The embedded model's queries often cover two objects of one colour that do not touch: their mask is two
blobs, and neither object gets a mask of its own (open vocabulary, 150 `val` images: 66 of 361 objects had
no query mask at IoU >= 0.5; for 53 of them the query that covered them also covered an object of the same
colour, and 48 of the 66 touched no other object). Each blob of at least MIN_CELLS stride-4 cells becomes
one more candidate of the final round, with its query's class logits and re-id embedding, its own mask
(its query's logits on the blob and around it, OUTSIDE elsewhere) and its own box. The name scorer
(name_scorer.py) judges every candidate, whole masks and pieces alike, from the same evidence plus the
piece's share of its query's mask; then a query answers with its whole mask or with its pieces, whichever
scored higher (`whole_or_pieces`), never both. The tracker tells a query's pieces apart by their place
(tracker.py). Applied at inference only: training matches whole queries.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .tracker import mask_iou

MIN_CELLS = 4  # a smaller blob is a speck of the mask, not an object (a small object is 3-6 cells wide)
OUTSIDE = -10.0  # a piece's logit away from its blob: sigmoid ~ 0, so it adds nothing to the answer
REPEAT_IOU = 0.5  # a piece overlapping a better candidate this much is the same object again


def blobs(inside: np.ndarray) -> list[np.ndarray]:
    """inside [h,w] uint8 (logit > 0) of one query's mask -> the cells [h,w] bool of each blob of >= MIN_CELLS
    (8-connected), or [] when the mask is one blob (or none)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=8)
    big = [k for k in range(1, count) if stats[k, cv2.CC_STAT_AREA] >= MIN_CELLS]
    return [labels == k for k in big] if len(big) > 1 else []


def piece_logits(mask_logits: torch.Tensor, cells: list[np.ndarray]) -> torch.Tensor:
    """A query's logits [h,w] and its blobs -> [P,h,w]: each blob keeps the logits on it and in a one-cell
    ring around it (where the upsampled boundary comes from) that no other blob holds; OUTSIDE elsewhere."""
    taken = np.any(cells, axis=0)
    kernel = np.ones((3, 3), np.uint8)
    regions = [(cv2.dilate(c.astype(np.uint8), kernel) > 0) & (c | ~taken) for c in cells]
    keep = torch.from_numpy(np.stack(regions)).to(mask_logits.device)
    return torch.where(keep, mask_logits[None], torch.full_like(mask_logits[None], OUTSIDE))


def piece_boxes(cells: list[np.ndarray]) -> torch.Tensor:
    """Blobs [h,w] bool -> [P,4] (cx, cy, w, h) in [0, 1] of the map: each blob's tight box."""
    height, width = cells[0].shape
    boxes = []
    for c in cells:
        ys, xs = np.nonzero(c)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        boxes.append([(x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height])
    return torch.tensor(boxes, dtype=torch.float32)


def add_pieces(mask_logits: torch.Tensor, class_logits: torch.Tensor, boxes: torch.Tensor,
               reid_embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The final round's mask_logits [B,Q,h,w], class_logits [B,Q,N], boxes [B,Q,4], reid_embeddings [B,Q,R]
    -> the same with every piece appended as a candidate (Q -> Q + P, P the most pieces of any image), plus
    share [B,Q+P]: each candidate's part of its query's mask (1 for whole masks, 0 for padding) and
    parents [B,Q+P] int64: each candidate's query (-1 for padding: an image with fewer pieces than P)."""
    batch, queries = mask_logits.shape[:2]
    inside = (mask_logits > 0).to("cpu", torch.uint8).numpy()  # one transfer: OpenCV finds the blobs
    found = []  # per image: (query, piece logits [P_q,h,w], boxes [P_q,4], shares [P_q])
    for b in range(batch):
        image = []
        for q in range(queries):
            cells = blobs(inside[b, q])
            if cells:
                areas = np.array([c.sum() for c in cells], np.float32)
                image.append((q, piece_logits(mask_logits[b, q], cells), piece_boxes(cells),
                              torch.from_numpy(areas / areas.sum())))
        found.append(image)
    extra = max((sum(len(p[1]) for p in image) for image in found), default=0)
    share = torch.ones(batch, queries + extra, device=mask_logits.device)
    own = torch.arange(queries, device=mask_logits.device).expand(batch, -1)
    if extra == 0:
        return mask_logits, class_logits, boxes, reid_embeddings, share, own
    parents = torch.full((batch, extra), -1, dtype=torch.long, device=mask_logits.device)
    new_masks = mask_logits.new_full((batch, extra, *mask_logits.shape[2:]), OUTSIDE)
    new_boxes = boxes.new_zeros((batch, extra, 4))
    share[:, queries:] = 0
    for b, image in enumerate(found):
        at = 0  # into the appended candidates
        for q, logits, piece_box, piece_share in image:
            end = at + len(logits)
            parents[b, at:end] = q
            new_masks[b, at:end] = logits.to(new_masks.dtype)
            new_boxes[b, at:end] = piece_box.to(new_boxes)
            share[b, queries + at:queries + end] = piece_share.to(share)
            at = end
    take = parents.clamp(min=0)[..., None]
    return (torch.cat([mask_logits, new_masks], 1),
            torch.cat([class_logits, class_logits.gather(1, take.expand(-1, -1, class_logits.shape[-1]))], 1),
            torch.cat([boxes, new_boxes], 1),
            torch.cat([reid_embeddings, reid_embeddings.gather(1, take.expand(-1, -1, reid_embeddings.shape[-1]))], 1),
            share, torch.cat([own, parents], 1))


def whole_or_pieces(name_logits: torch.Tensor, parents: torch.Tensor, mask_logits: torch.Tensor,
                    queries: int) -> torch.Tensor:
    """name_logits [B,Q+P,N], parents [B,Q+P] and mask_logits [B,Q+P,h,w] (add_pieces), queries Q -> the logits with
    padding at -inf, and two kinds of candidate at -inf:
    - for each query that fell apart, its whole mask or its pieces, whichever's best logit is lower: one query
      answers for one object or for several, not for both (a whole mask and a piece of it);
    - a piece that repeats a better candidate (mask IoU >= REPEAT_IOU): that object has its own answer."""
    logits = name_logits.masked_fill((parents < 0)[..., None], float("-inf"))
    if parents.shape[1] == queries:
        return logits
    best = logits.amax(-1)  # [B,Q+P]
    owner = parents[:, queries:].clamp(min=0)
    pieces_best = best.new_full((best.shape[0], queries), float("-inf")).scatter_reduce(
        1, owner, best[:, queries:], reduce="amax")  # padding is -inf: it never wins
    whole_loses = pieces_best > best[:, :queries]  # [B,Q]
    pieces_lose = ~whole_loses.gather(1, owner)  # [B,P]
    logits = logits.masked_fill(torch.cat([whole_loses, pieces_lose], 1)[..., None], float("-inf"))
    best = logits.amax(-1)
    overlaps = torch.stack([mask_iou(masks[queries:], masks) for masks in mask_logits > 0])  # [B,P,Q+P]
    repeats = (overlaps >= REPEAT_IOU) & (best[:, None, :] > best[:, queries:, None])
    return logits.masked_fill(torch.cat([torch.zeros_like(whole_loses), repeats.any(-1)], 1)[..., None], float("-inf"))
