"""Video clips of the procedural world: moving shapes with persistent identities.

Each object moves with a constant velocity plus a small jitter, bounces off the borders (or, for a
"wanderer", leaves and enters the frame), may rotate, and may be fully occluded for at most
`MAX_HIDDEN` consecutive frames, after which it reappears with the same identity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperseg_ros.world.scene import (
    Scene,
    SceneObject,
    degrade,
    draw_background,
    draw_scene,
    extent,
    paint,
    visible_masks,
)

MIN_FRAMES, MAX_FRAMES = 8, 64
MAX_HIDDEN = 5  # longest full occlusion of an object that is inside the image, in frames


@dataclass
class Clip:
    """frames[t] is a Scene holding every object of the clip (same order and identities in all
    frames); an object out of view or fully occluded has an empty mask in that frame."""

    frames: list[Scene]

    @property
    def identities(self) -> list[int]:
        return [o.identity for o in self.frames[0].objects]

    def longest_hidden(self) -> int:
        """Longest run of frames in which an object inside the image is fully occluded."""
        worst = 0
        for i in range(len(self.frames[0].objects)):
            run = 0
            for f in self.frames:
                hidden = f.full_areas[i] > 0 and not f.masks[i].any()
                run = run + 1 if hidden else 0
                worst = max(worst, run)
        return worst


def _fold(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect positions into [lo, hi]: a bounce off both borders for an unbounded straight path."""
    span = max(hi - lo, 1e-6)
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def _trajectory(rng: np.random.Generator, obj: SceneObject, frames: int, width: int, height: int,
                wanderer: bool) -> np.ndarray:
    """Centres [T,2] float pixels and angles [T] degrees -> array [T,3]."""
    short = min(width, height)
    speed = rng.uniform(0.0, 0.035) * short
    heading = rng.uniform(0, 2 * np.pi)
    v = speed * np.array([np.cos(heading), np.sin(heading)])
    t = np.arange(frames)[:, None]
    start = np.array([obj.cx, obj.cy])
    if wanderer:  # starts outside half the time and crosses the frame without bouncing
        v = v if speed > 0.01 * short else v / max(speed, 1e-6) * 0.02 * short
        if rng.random() < 0.5:
            start = start - v * frames * rng.uniform(0.2, 0.5)
    jitter = np.cumsum(rng.normal(0, 0.002 * short, (frames, 2)), 0)
    path = start + v * t + jitter
    if not wanderer:
        r = extent(obj)
        path = np.stack([_fold(path[:, 0], r, width - r), _fold(path[:, 1], r, height - r)], 1)
    spin = rng.uniform(-6, 6) if rng.random() < 0.5 else 0.0
    return np.concatenate([path, (obj.angle + spin * t) % 360], 1)


def _plant_occlusion(rng: np.random.Generator, paths: list[np.ndarray], objects: list[SceneObject],
                     frames: int) -> None:
    """Make the topmost object pass over a smaller one mid-clip, briefly hiding it (in place)."""
    top = len(objects) - 1
    below = [i for i in range(top) if objects[i].side < 0.6 * objects[top].side and objects[i].shape != "ring"]
    if objects[top].shape == "ring" or not below:
        return
    j = int(rng.choice(below))
    tc = int(rng.integers(frames // 4, 3 * frames // 4 + 1))
    # Hidden while the offset is under the cover margin; a fast enough relative speed keeps it short.
    margin = max(objects[top].side * 0.3 - extent(objects[j]), 1.0)
    speed = rng.uniform(2 * margin / MAX_HIDDEN, 4 * margin / MAX_HIDDEN + 1)
    heading = rng.uniform(0, 2 * np.pi)
    rel = speed * np.array([np.cos(heading), np.sin(heading)]) * (np.arange(frames)[:, None] - tc)
    paths[top][:, :2] = paths[j][:, :2] + rel


def draw_clip(rng: np.random.Generator, width: int = 320, height: int = 240, frames: int | None = None,
              num_objects: int | None = None, degrade_image: bool = True, tries: int = 20) -> Clip:
    """Draw a clip of `frames` (8..64, random if None) frames of width x height."""
    frames = int(frames if frames is not None else rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
    if not MIN_FRAMES <= frames <= MAX_FRAMES:
        raise ValueError(f"{frames} frames outside {MIN_FRAMES}..{MAX_FRAMES}")
    for _ in range(tries):
        first = draw_scene(rng, width, height, num_objects, degrade_image=False)
        objects = first.objects
        paths = [_trajectory(rng, o, frames, width, height, wanderer=rng.random() < 0.2) for o in objects]
        if len(objects) > 1 and rng.random() < 0.3:
            _plant_occlusion(rng, paths, objects, frames)
        background = draw_background(rng, height, width)
        scenes = []
        for t in range(frames):
            moved = [o.moved(float(p[t, 0]), float(p[t, 1]), float(p[t, 2])) for o, p in zip(objects, paths)]
            masks, areas = visible_masks(moved, height, width)
            image = paint(background, moved, masks)
            scenes.append(Scene(degrade(rng, image) if degrade_image else image, moved, masks, areas))
        clip = Clip(scenes)
        if clip.longest_hidden() <= MAX_HIDDEN:
            return clip
    raise RuntimeError("could not draw a clip that keeps full occlusions within MAX_HIDDEN frames")
