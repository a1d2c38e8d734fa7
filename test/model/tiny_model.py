"""Inputs shared by the model tests (a unique module name: every test folder has a conftest)."""
import numpy as np

WORDS = ["the red circle", "blue star", "green square", "shape with three corners", "yellow", "triangle"]


def frame(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A deterministic RGB frame with a few flat rectangles."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), rng.integers(0, 256, 3), dtype=np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, height - 8), rng.integers(0, width - 8)
        image[y:y + rng.integers(4, 16), x:x + rng.integers(4, 16)] = rng.integers(0, 256, 3)
    return image
