"""One still image of the procedural world (../shared/design/synthetic-world.md) and its ground truth.

`draw_scene(rng, width, height)` places 1-6 filled shapes on a low-saturation background, later
objects occluding earlier ones while every object keeps >= 30% of its area visible, and returns
the RGB image with per-object visible masks and attributes. Everything is drawn with OpenCV from a
`numpy.random.Generator`, so a seed fixes the scene.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

SHAPES = ("circle", "square", "triangle", "star", "hexagon", "ring", "cross", "heart")
COLOURS = {  # RGB, saturated or extreme so that no background (low saturation, mid grey) resembles them
    "red": (220, 30, 30),
    "green": (40, 170, 50),
    "blue": (35, 70, 225),
    "yellow": (245, 220, 30),
    "orange": (250, 135, 15),
    "purple": (135, 40, 175),
    "white": (250, 250, 250),
    "black": (12, 12, 12),
}
SIZES = {"small": (0.06, 0.12), "medium": (0.13, 0.24), "large": (0.25, 0.40)}  # side / short image side
# Corners of the outline (0 = round); the heart has a cusp and a tip, so no count is claimed for it.
CORNERS = {"circle": 0, "ring": 0, "square": 4, "triangle": 3, "star": 10, "hexagon": 6, "cross": 12, "heart": None}
RING_HOLE = 0.55  # inner radius / outer radius: large enough to hold a small shape ("inside")
MIN_VISIBLE = 0.30  # fraction of an object's area that occlusion must leave visible in a still
MIN_SIZE, MAX_SIZE = (160, 120), (1280, 720)


def _normalised(points: np.ndarray) -> np.ndarray:
    """Centre a polygon's bounding box on 0 and scale its longer side to 1. points: [N,2] float."""
    lo, hi = points.min(0), points.max(0)
    return (points - (lo + hi) / 2) / (hi - lo).max()


def _regular(n: int, radius_at: np.ndarray | None = None, phase: float = -np.pi / 2) -> np.ndarray:
    t = phase + np.arange(n) * 2 * np.pi / n
    r = np.ones(n) if radius_at is None else radius_at
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def _heart(n: int = 48) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    return np.stack([x, -y], 1)  # image y grows downwards


_ARM = 1 / 6  # half width of a cross arm, in units of the cross's side
OUTLINES = {  # unit outlines (bounding-box side 1, centred); circle and ring are drawn as discs
    "square": _normalised(_regular(4, phase=np.pi / 4)),
    "triangle": _normalised(_regular(3)),
    "hexagon": _normalised(_regular(6, phase=0.0)),
    "star": _normalised(_regular(10, radius_at=np.tile([1.0, 0.42], 5))),
    "cross": _normalised(np.array([(-_ARM, -0.5), (_ARM, -0.5), (_ARM, -_ARM), (0.5, -_ARM), (0.5, _ARM), (_ARM, _ARM),
                                   (_ARM, 0.5), (-_ARM, 0.5), (-_ARM, _ARM), (-0.5, _ARM), (-0.5, -_ARM), (-_ARM, -_ARM)])),
    "heart": _normalised(_heart()),
}
_SUBPIXEL = 4  # OpenCV fixed-point bits: vertices at 1/16 px


@dataclass(frozen=True)
class SceneObject:
    """One shape. Geometry in image pixels (float); `side` is the unrotated bounding-box side."""

    identity: int  # >= 1, unique within a scene or clip, kept across the frames of a clip
    shape: str
    colour: str
    size: str  # small | medium | large
    cx: float
    cy: float
    side: float
    angle: float  # rotation in degrees
    rgb: tuple[int, int, int] = field(default=(0, 0, 0), compare=False)  # the drawn colour (jittered)

    @property
    def corners(self) -> int | None:
        return CORNERS[self.shape]

    @property
    def outer_radius(self) -> float:
        return self.side / 2

    def moved(self, cx: float, cy: float, angle: float) -> SceneObject:
        return replace(self, cx=cx, cy=cy, angle=angle)


def object_mask(obj: SceneObject, height: int, width: int) -> np.ndarray:
    """Filled mask of one object as if nothing occluded it (ring holes excluded). -> [H,W] bool."""
    mask = np.zeros((height, width), np.uint8)
    scale = 1 << _SUBPIXEL
    centre = (int(round(obj.cx * scale)), int(round(obj.cy * scale)))
    if obj.shape in ("circle", "ring"):
        cv2.circle(mask, centre, int(round(obj.outer_radius * scale)), 1, -1, cv2.LINE_8, _SUBPIXEL)
        if obj.shape == "ring":
            cv2.circle(mask, centre, int(round(obj.outer_radius * RING_HOLE * scale)), 0, -1, cv2.LINE_8, _SUBPIXEL)
    else:
        a = np.deg2rad(obj.angle)
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # image y points down
        pts = OUTLINES[obj.shape] @ rot.T * obj.side + (obj.cx, obj.cy)
        cv2.fillPoly(mask, [np.round(pts * scale).astype(np.int32)], 1, cv2.LINE_8, _SUBPIXEL)
    return mask.astype(bool)


def extent(obj: SceneObject) -> float:
    """Half of the largest axis-aligned extent the object can have at any rotation, in pixels."""
    if obj.shape in ("circle", "ring"):
        return obj.outer_radius
    return float(np.linalg.norm(OUTLINES[obj.shape], axis=1).max() * obj.side)


@dataclass
class Scene:
    """image: [H,W,3] uint8 RGB. objects: bottom to top. masks: [N,H,W] bool visible parts (after
    occlusion, cropped to the image), aligned with `objects`. full_areas: [N] pixel area of each
    object without occlusion (inside the image)."""

    image: np.ndarray
    objects: list[SceneObject]
    masks: np.ndarray
    full_areas: np.ndarray

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]

    def visible_fraction(self) -> np.ndarray:
        """[N] float: visible area / unoccluded area (1.0 for an object fully in view)."""
        return self.masks.reshape(len(self.objects), -1).sum(1) / np.maximum(self.full_areas, 1)

    def bbox(self, i: int) -> tuple[int, int, int, int] | None:
        """Tight (x, y, w, h) of object i's visible mask, or None when it is not visible."""
        ys, xs = np.nonzero(self.masks[i])
        if len(xs) == 0:
            return None
        return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def visible_masks(objects: list[SceneObject], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Occlusion in drawing order. -> (visible masks [N,H,W] bool, unoccluded areas [N] int)."""
    full = [object_mask(o, height, width) for o in objects]
    masks = np.zeros((len(objects), height, width), bool)
    covered = np.zeros((height, width), bool)
    for i in range(len(objects) - 1, -1, -1):  # top first: what is above hides what is below
        masks[i] = full[i] & ~covered
        covered |= full[i]
    return masks, np.array([m.sum() for m in full], np.int64)


def draw_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Flat, gradient, noise or low-contrast texture; never saturated. -> [H,W,3] float32 0..255."""

    def dull() -> np.ndarray:  # a grey with a faint tint: channel spread <= 40
        return rng.uniform(55, 195) + rng.uniform(-20, 20, 3)

    kind = rng.choice(["flat", "gradient", "noise", "texture"])
    base = np.broadcast_to(dull().astype(np.float32), (height, width, 3)).copy()
    if kind == "gradient":
        a = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        t = (xx * np.cos(a) + yy * np.sin(a))
        t = (t - t.min()) / max(t.max() - t.min(), 1)
        base += t[..., None] * (dull() - base[0, 0]).astype(np.float32)
    elif kind == "noise":
        base += rng.normal(0, rng.uniform(6, 18), (height, width, 1)).astype(np.float32)
    elif kind == "texture":
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        amp = rng.uniform(6, 20)
        style = rng.choice(["stripes", "checks", "blotches"])
        period = rng.uniform(8, 40)
        if style == "stripes":
            a = rng.uniform(0, np.pi)
            pattern = np.sin((xx * np.cos(a) + yy * np.sin(a)) * 2 * np.pi / period)
        elif style == "checks":
            pattern = ((xx // period + yy // period) % 2) * 2 - 1
        else:
            coarse = rng.normal(0, 1, (max(2, height // 24), max(2, width // 24))).astype(np.float32)
            pattern = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
            pattern /= max(np.abs(pattern).max(), 1e-6)
        base += amp * pattern[..., None]
    return np.clip(base, 0, 255)


def degrade(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Sensor noise, mild blur and JPEG artefacts, each applied with some probability. uint8 RGB."""
    out = image.astype(np.float32)
    if rng.random() < 0.5:
        out += rng.normal(0, rng.uniform(2, 8), out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.5, 1.0))
    if rng.random() < 0.3:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 90))])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return out


def paint(background: np.ndarray, objects: list[SceneObject], masks: np.ndarray) -> np.ndarray:
    """Fill each visible mask with its object's colour. background: [H,W,3] float32 -> uint8."""
    image = background.copy()
    for obj, mask in zip(objects, masks):
        image[mask] = obj.rgb
    return np.clip(image, 0, 255).astype(np.uint8)


def random_object(rng: np.random.Generator, identity: int, height: int, width: int, *, shape: str | None = None,
                  colour: str | None = None, size: str | None = None) -> SceneObject:
    """An object with random attributes, placed fully inside the image."""
    shape = shape or str(rng.choice(SHAPES))
    colour = colour or str(rng.choice(list(COLOURS)))
    size = size or str(rng.choice(list(SIZES)))
    lo, hi = SIZES[size]
    side = rng.uniform(lo, hi) * min(height, width)
    rgb = tuple(int(np.clip(c + rng.integers(-12, 13), 0, 255)) for c in COLOURS[colour])
    obj = SceneObject(identity, shape, colour, size, 0.0, 0.0, side, float(rng.uniform(0, 360)), rgb)
    r = extent(obj) + 1
    return obj.moved(float(rng.uniform(r, width - r)), float(rng.uniform(r, height - r)), obj.angle)


def place_inside_ring(rng: np.random.Generator, ring: SceneObject, identity: int, height: int,
                      width: int) -> SceneObject | None:
    """A small object centred in `ring`'s hole (the "inside" relation), or None if the hole is too small."""
    obj = random_object(rng, identity, height, width, size="small")
    hole = ring.outer_radius * RING_HOLE
    if extent(obj) > hole * 1.1 or obj.shape == "ring":
        return None
    off = rng.uniform(0, max(hole - extent(obj), 0) * 0.5)
    a = rng.uniform(0, 2 * np.pi)
    return obj.moved(ring.cx + off * np.cos(a), ring.cy + off * np.sin(a), obj.angle)


def inside_ring(obj: SceneObject, ring: SceneObject) -> bool:
    """Whether obj's centre lies in ring's hole (and obj is small enough to sit there)."""
    if ring.shape != "ring" or obj.identity == ring.identity:
        return False
    hole = ring.outer_radius * RING_HOLE
    return bool(np.hypot(obj.cx - ring.cx, obj.cy - ring.cy) < hole and obj.side < 2 * hole)


def draw_scene(rng: np.random.Generator, width: int = 320, height: int = 240, num_objects: int | None = None,
               degrade_image: bool = True, tries: int = 30) -> Scene:
    """Draw one scene. width x height within 160x120..1280x720; num_objects 1..6 (random if None)."""
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise ValueError(f"image size {width}x{height} outside {MIN_SIZE}..{MAX_SIZE}")
    n = int(num_objects if num_objects is not None else rng.integers(1, 7))
    objects: list[SceneObject] = []
    for identity in range(1, n + 1):
        for _ in range(tries):
            ring = next((o for o in objects if o.shape == "ring" and o.size != "small"), None)
            if ring is not None and rng.random() < 0.35:
                cand = place_inside_ring(rng, ring, identity, height, width)
                if cand is None:
                    continue
            else:
                cand = random_object(rng, identity, height, width)
            masks, areas = visible_masks(objects + [cand], height, width)
            vis = masks.reshape(len(masks), -1).sum(1) / np.maximum(areas, 1)
            if areas.min() > 0 and vis.min() >= MIN_VISIBLE:
                objects.append(cand)
                break
    masks, areas = visible_masks(objects, height, width)
    image = paint(draw_background(rng, height, width), objects, masks)
    if degrade_image:
        image = degrade(rng, image)
    return Scene(image, objects, masks, areas)
