"""How one object of the world is drawn beyond its named attributes: the shape's geometry variant and
its paint. The spec names a family, not one drawing, so every object draws its own variant: star
point sharpness, cross arm width, heart proportions, ring hole 35-70%, slightly irregular polygons,
rounded corners, slightly oval circles; colours jittered in hue, saturation and value around each
named colour, painted flat, shaded, as a gradient or outlined. Each variant stays one a person
would still name the same.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import cv2
import numpy as np

RING_HOLE = 0.55  # canonical inner / outer radius of a ring
RING_HOLES = (0.35, 0.70)  # the family's range of hole sizes
FILLS = ("flat", "shaded", "gradient", "outlined")
# Named colours as (hue degrees, hue spread, saturation range, value range) in HSV.
HSV_RANGES = {
    "red": (0.0, 8.0, (0.70, 1.0), (0.62, 1.0)),
    "orange": (27.0, 6.0, (0.80, 1.0), (0.85, 1.0)),
    "yellow": (54.0, 5.0, (0.75, 1.0), (0.85, 1.0)),
    "green": (122.0, 22.0, (0.60, 1.0), (0.45, 0.85)),
    "blue": (222.0, 14.0, (0.65, 1.0), (0.60, 1.0)),
    "purple": (282.0, 14.0, (0.55, 0.90), (0.45, 0.80)),
    "white": (0.0, 180.0, (0.0, 0.06), (0.93, 1.0)),
    "black": (0.0, 180.0, (0.0, 0.30), (0.0, 0.14)),
}


def normalised(points: np.ndarray) -> np.ndarray:
    """Centre a polygon's bounding box on 0 and scale its longer side to 1. points: [N,2] float."""
    lo, hi = points.min(0), points.max(0)
    return (points - (lo + hi) / 2) / (hi - lo).max()


def regular(n: int, radius_at: np.ndarray | None = None, phase: float = -np.pi / 2) -> np.ndarray:
    t = phase + np.arange(n) * 2 * np.pi / n
    r = np.ones(n) if radius_at is None else radius_at
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def heart(n: int = 48, lobe: float = 5.0, dip: float = 2.0, tip: float = 1.0, width: float = 1.0) -> np.ndarray:
    """The classic parametric heart; lobe / dip / tip reshape the lobes, the notch and the point."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3 * width
    y = 13 * np.cos(t) - lobe * np.cos(2 * t) - dip * np.cos(3 * t) - tip * np.cos(4 * t)
    return np.stack([x, -y], 1)  # image y grows downwards


def cross(arm: float) -> np.ndarray:
    """A plus sign with arms of half width `arm` (in units of the side)."""
    a = arm
    return np.array([(-a, -0.5), (a, -0.5), (a, -a), (0.5, -a), (0.5, a), (a, a), (a, 0.5), (-a, 0.5), (-a, a),
                     (-0.5, a), (-0.5, -a), (-a, -a)])


CANONICAL = {  # unit outlines (bounding-box side 1, centred); circle and ring are drawn as discs
    "square": normalised(regular(4, phase=np.pi / 4)),
    "triangle": normalised(regular(3)),
    "hexagon": normalised(regular(6, phase=0.0)),
    "star": normalised(regular(10, radius_at=np.tile([1.0, 0.42], 5))),
    "cross": normalised(cross(1 / 6)),
    "heart": normalised(heart()),
}


def round_corners(points: np.ndarray, fraction: float, steps: int = 4) -> np.ndarray:
    """Replace each vertex by a quadratic curve from `fraction` of the way along its two edges."""
    if fraction <= 0:
        return points
    prev, nxt = np.roll(points, 1, 0), np.roll(points, -1, 0)
    t = np.linspace(0, 1, steps)[:, None, None]
    a = points + (prev - points) * fraction  # on the incoming edge
    b = points + (nxt - points) * fraction  # on the outgoing edge
    curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * points + t**2 * b  # [steps, N, 2]
    return curve.transpose(1, 0, 2).reshape(-1, 2)


def outline(rng: np.random.Generator, shape: str) -> np.ndarray | None:
    """A random unit outline of `shape` within the family (None for circle and ring: ellipses)."""
    if shape in ("circle", "ring"):
        return None
    if shape == "star":
        inner = rng.uniform(0.32, 0.58)  # sharp to blunt points
        pts = regular(10, radius_at=np.tile([1.0, inner], 5) * rng.uniform(0.96, 1.04, 10))
        rounding = rng.uniform(0, 0.18) if rng.random() < 0.4 else 0.0
    elif shape == "cross":
        pts = cross(rng.uniform(0.11, 0.22)) + rng.uniform(-0.01, 0.01, (12, 2))
        rounding = rng.uniform(0, 0.2) if rng.random() < 0.3 else 0.0
    elif shape == "heart":
        pts = heart(lobe=rng.uniform(3.5, 6.5), dip=rng.uniform(1.0, 3.0), tip=rng.uniform(0.3, 1.6),
                    width=rng.uniform(0.85, 1.15))
        rounding = 0.0
    else:
        n = {"square": 4, "triangle": 3, "hexagon": 6}[shape]
        phase = {"square": np.pi / 4, "triangle": -np.pi / 2, "hexagon": 0.0}[shape]
        irregular = rng.uniform(0, 0.05) if rng.random() < 0.5 else 0.0
        pts = regular(n, phase=phase) * (1 + rng.uniform(-irregular, irregular, (n, 1)))
        pts = pts + rng.uniform(-irregular, irregular, (n, 2))
        rounding = rng.uniform(0.05, 0.3) if rng.random() < 0.35 else 0.0
    return normalised(round_corners(pts, rounding))


def hsv_colour(rng: np.random.Generator, colour: str, shift: float = 1.0) -> tuple[int, int, int]:
    """An RGB shade of a named colour, drawn from its HSV range (shift < 1 narrows the spread)."""
    hue, spread, (s0, s1), (v0, v1) = HSV_RANGES[colour]
    h = ((hue + rng.uniform(-spread, spread) * shift) % 360) / 360
    r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(s0, s1), rng.uniform(v0, v1))
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


@dataclass(frozen=True, eq=False)
class Look:
    """outline: unit polygon (None = the canonical outline; circles and rings are ellipses);
    hole: a ring's inner / outer radius; aspect: minor / major axis of a circle or ring;
    fill: flat | shaded | gradient | outlined; tone: the second shade of shaded / gradient /
    outlined paint; direction: of the light or the gradient, radians; border: outline width, px."""

    outline: np.ndarray | None = None
    hole: float = RING_HOLE
    aspect: float = 1.0
    fill: str = "flat"
    tone: tuple[int, int, int] = field(default=(0, 0, 0))
    direction: float = 0.0
    border: int = 1


def random_look(rng: np.random.Generator, shape: str, colour: str) -> tuple[Look, tuple[int, int, int]]:
    """A geometry variant and paint for one object -> (look, main RGB shade)."""
    rgb = hsv_colour(rng, colour)
    fill = str(rng.choice(FILLS, p=[0.45, 0.2, 0.2, 0.15]))
    if fill == "outlined":  # a darker line (a lighter one on black) of the same colour
        tone = hsv_colour(rng, colour, 0.5)
        factor = rng.uniform(0.45, 0.7)
        tone = tuple(int(c * factor) for c in tone) if colour != "black" else tuple(min(c + 45, 255) for c in tone)
    else:
        tone = hsv_colour(rng, colour)
    return Look(outline=outline(rng, shape), hole=float(rng.uniform(*RING_HOLES)) if shape == "ring" else RING_HOLE,
                aspect=float(rng.uniform(0.9, 1.0)) if rng.random() < 0.4 else 1.0, fill=fill,
                tone=tuple(int(c) for c in tone), direction=float(rng.uniform(0, 2 * np.pi)),
                border=int(rng.integers(1, 4))), rgb


def paint_object(image: np.ndarray, mask: np.ndarray, rgb, look: Look, cx: float, cy: float, side: float) -> None:
    """Paint one object's visible mask into image ([H,W,3] uint8, in place); cx, cy in its pixels."""
    if look.fill == "flat" or not mask.any():
        image[mask] = rgb
        return
    ys, xs = np.nonzero(mask)
    c, s = np.cos(look.direction), np.sin(look.direction)
    if look.fill == "outlined":
        image[mask] = rgb
        m = mask.astype(np.uint8)
        inner = cv2.erode(m, np.ones((2 * look.border + 1,) * 2, np.uint8), borderType=cv2.BORDER_CONSTANT,
                          borderValue=0)
        image[(m - inner).astype(bool)] = look.tone
        return
    t = ((xs - cx) * c + (ys - cy) * s) / max(side, 1.0) + 0.5  # 0..1 across the object
    t = np.clip(t, 0, 1)[:, None].astype(np.float32)
    a, b = np.asarray(rgb, np.float32), np.asarray(look.tone, np.float32)
    if look.fill == "gradient":
        values = a * (1 - t) + b * t
    else:  # shaded: brighter towards the light, darker away from it
        values = a * (1.12 - 0.26 * t)
    image[ys, xs] = np.clip(values, 0, 255)


def named_colour(rgb) -> str | None:
    """The named colour whose HSV range holds an RGB shade (None when none does)."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    if v <= HSV_RANGES["black"][3][1] + 0.02:  # hue and saturation of near-black pixels are noise
        return "black"
    for name, (hue, spread, (s0, s1), (v0, v1)) in HSV_RANGES.items():
        dh = abs((h * 360 - hue + 180) % 360 - 180)
        if dh <= spread + 1 and s0 - 0.02 <= s <= s1 + 0.02 and v0 - 0.02 <= v <= v1 + 0.02:
            return name
    return None
