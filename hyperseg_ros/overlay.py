"""The `segmentation/overlay` image: masks blended over the frame with id, label and score."""
from __future__ import annotations

import colorsys

import cv2
import numpy as np

_GOLDEN = 0.618033988749895  # hue step that keeps consecutive ids far apart on the colour wheel


def colour(instance_id: int) -> tuple[int, int, int]:
    """A bright RGB colour that depends only on the instance id (stable while it is tracked)."""
    r, g, b = colorsys.hsv_to_rgb((instance_id * _GOLDEN) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def render_overlay(image_rgb: np.ndarray, instances, alpha: float = 0.5) -> np.ndarray:
    """Draw instances over the frame.

    image_rgb: uint8 [H, W, 3]; instances: objects with `id`, `label`, `score` and `mask`
    (bool [H, W]). Returns a new uint8 [H, W, 3] RGB image: each mask tinted and outlined in
    its id's colour, with "#id label score" written at the top of its box.
    """
    out = np.array(image_rgb, dtype=np.uint8, copy=True, order="C")
    for inst in instances:
        mask = np.asarray(inst.mask, dtype=bool)
        if not mask.any():
            continue
        rgb = np.array(colour(inst.id), dtype=np.float32)
        out[mask] = (out[mask] * (1.0 - alpha) + rgb * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in rgb), 2)
    for inst in instances:  # text last so masks never cover it
        mask = np.asarray(inst.mask, dtype=bool)
        ys, xs = np.nonzero(mask)
        if xs.size == 0:
            continue
        text = f"#{inst.id} {inst.label} {inst.score:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        x = int(min(xs.min(), max(0, out.shape[1] - tw)))
        y = int(max(ys.min(), th + base))
        cv2.rectangle(out, (x, y - th - base), (x + tw, y), colour(inst.id), cv2.FILLED)
        cv2.putText(out, text, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return out
