"""Seed ranges of the world's splits. A sample's seed is `first seed of its split + index`; the
ranges are disjoint, so train, val and test never share a scene; `shifted` scenes are drawn by
a second renderer (world/shifted.py) that training never uses. `fresh` is a range the project
never trains or tunes on: an evaluation on it draws a random offset so every run sees new scenes."""
from __future__ import annotations

import numpy as np

SPLITS = {  # name -> [first, last) seed
    "train": (0, 1_000_000_000),
    "val": (1_000_000_000, 1_010_000_000),
    "test": (2_000_000_000, 2_010_000_000),
    "fresh": (3_000_000_000, 4_000_000_000),
    "shifted": (4_000_000_000, 4_010_000_000),  # drawn by the evaluation renderer (world/shifted.py)
}


def split_seed(split: str, index: int) -> int:
    """The seed of sample `index` of `split`; raises if the index runs out of the split's range."""
    first, last = SPLITS[split]
    if not 0 <= index < last - first:
        raise IndexError(f"sample {index} outside split {split!r} ({last - first} seeds)")
    return first + index


def split_of(seed: int) -> str | None:
    """Which split a seed belongs to (None for seeds outside every split)."""
    return next((name for name, (a, b) in SPLITS.items() if a <= seed < b), None)


def sample_rng(split: str, index: int, stream: int = 0) -> np.random.Generator:
    """Generator for one sample; `stream` separates independent draws (e.g. tasks) of one seed."""
    return np.random.default_rng([split_seed(split, index), stream])


def fresh_offset() -> int:
    """A random start index inside `fresh` (from OS entropy), leaving room for 10 million samples."""
    first, last = SPLITS["fresh"]
    return int(np.random.default_rng().integers(0, last - first - 10_000_000))
