"""Shared fixtures of the model tests: the tiny HyperSeg with a small word tokenizer.

Also puts the source tree first on sys.path, so the tests import this checkout's `hyperseg_ros`
rather than the copy that `cmake --install` put into .venv.
"""
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

WORDS = ["the red circle", "blue star", "green square", "shape with three corners", "yellow", "triangle"]


@pytest.fixture(scope="session")
def tiny():
    """(HyperSeg tiny, tokenizer), seeded, eval mode, 1 thread."""
    from hyperseg_ros.model.config import HyperSegConfig
    from hyperseg_ros.model.hyperseg import HyperSeg
    from hyperseg_ros.model.tokenizer import build_word_tokenizer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(WORDS)
    model = HyperSeg(HyperSegConfig.from_size("tiny", vocab_size=len(tokenizer))).eval()
    return model, tokenizer


def frame(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A deterministic RGB frame with a few flat rectangles."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), rng.integers(0, 256, 3), dtype=np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        image[y:y + rng.integers(4, 16), x:x + rng.integers(4, 16)] = rng.integers(0, 256, 3)
    return image
