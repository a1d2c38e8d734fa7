"""Masks <-> COCO uncompressed RLE (the `mask_rle` field of SegmentedInstance), and mask boxes.

COCO RLE: run lengths over the mask read column by column (Fortran order), alternating
background / foreground and starting with background, so a mask whose first pixel is set
begins with a zero-length run. Decoding goes through pycocotools, the reference implementation.
"""
from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as coco_mask


def encode(mask: np.ndarray) -> np.ndarray:
    """bool [H, W] -> uint32 run lengths (column-major, first run counts zeros); sums to H*W.

    Vectorised: one pass to find where the column-major pixel sequence changes value.
    """
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return np.zeros(0, dtype=np.uint32)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(edges)
    if flat[0]:
        runs = np.concatenate(([0], runs))
    return runs.astype(np.uint32)


def decode(counts, height: int, width: int) -> np.ndarray:
    """Run lengths (any int sequence) -> bool [H, W], through pycocotools.

    Raises ValueError when the runs do not cover exactly height*width pixels.
    """
    counts = [int(c) for c in counts]
    if sum(counts) != height * width:
        raise ValueError(f"RLE covers {sum(counts)} pixels, image has {height}x{width}={height * width}")
    rle = coco_mask.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    with warnings.catch_warnings():  # pycocotools 2.0.11's Cython passes copy=False to numpy 2
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco_mask.decode(rle).astype(bool)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x, y, w, h) in pixels around the set pixels of bool [H, W]; (0, 0, 0, 0) if empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return 0, 0, 0, 0
    rows = np.flatnonzero(mask.any(axis=1))
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)
