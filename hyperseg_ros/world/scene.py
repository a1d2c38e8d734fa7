"""One still image of the procedural world (../shared/design/synthetic-world.md) and its ground truth.

`draw_scene(rng, width, height)` places 1-6 filled shapes on a low-saturation background, later
objects occluding earlier ones while every object keeps >= 30% of its area visible, and returns
the RGB image with per-object visible masks and attributes. Each object draws its own geometry
variant and paint (world/looks.py); some repeat the shape or colour of another, so that telling
look-alikes apart needs sizes, positions and relations. Everything is drawn with OpenCV from a
`numpy.random.Generator`, so a seed fixes the scene.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from hyperseg_ros.world.looks import CANONICAL, Look, paint_object, random_look
from hyperseg_ros.world.looks import RING_HOLE as RING_HOLE  # re-exported: part of the scene API

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
MIN_VISIBLE = 0.30  # fraction of an object's area that occlusion must leave visible in a still
MIN_SIZE, MAX_SIZE = (160, 120), (1280, 720)


OUTLINES = CANONICAL  # canonical unit outlines; each object may carry its own variant (Look.outline)
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
    look: Look = field(default=Look(), compare=False)  # geometry variant and paint

    @property
    def corners(self) -> int | None:
        return CORNERS[self.shape]

    @property
    def outer_radius(self) -> float:
        return self.side / 2

    @property
    def outline(self) -> np.ndarray:
        """Unit outline of a polygonal shape (its own variant or the canonical one)."""
        return OUTLINES[self.shape] if self.look.outline is None else self.look.outline

    @property
    def hole_radius(self) -> float:
        """Radius of a ring's hole along its minor axis, in pixels (0 for other shapes)."""
        return self.outer_radius * self.look.hole * self.look.aspect if self.shape == "ring" else 0.0

    def moved(self, cx: float, cy: float, angle: float) -> SceneObject:
        return replace(self, cx=cx, cy=cy, angle=angle)


def object_mask(obj: SceneObject, height: int, width: int) -> np.ndarray:
    """Filled mask of one object as if nothing occluded it (ring holes excluded). -> [H,W] bool."""
    mask = np.zeros((height, width), np.uint8)
    scale = 1 << _SUBPIXEL
    centre = (int(round(obj.cx * scale)), int(round(obj.cy * scale)))
    if obj.shape in ("circle", "ring"):
        r = obj.outer_radius * scale
        axes = (int(round(r)), int(round(r * obj.look.aspect)))
        cv2.ellipse(mask, centre, axes, obj.angle, 0, 360, 1, -1, cv2.LINE_8, _SUBPIXEL)
        if obj.shape == "ring":
            hole = (int(round(axes[0] * obj.look.hole)), int(round(axes[1] * obj.look.hole)))
            cv2.ellipse(mask, centre, hole, obj.angle, 0, 360, 0, -1, cv2.LINE_8, _SUBPIXEL)
    else:
        a = np.deg2rad(obj.angle)
        rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # image y points down
        pts = obj.outline @ rot.T * obj.side + (obj.cx, obj.cy)
        cv2.fillPoly(mask, [np.round(pts * scale).astype(np.int32)], 1, cv2.LINE_8, _SUBPIXEL)
    return mask.astype(bool)


def extent(obj: SceneObject) -> float:
    """Half of the largest axis-aligned extent the object can have at any rotation, in pixels."""
    if obj.shape in ("circle", "ring"):
        return obj.outer_radius
    return float(np.linalg.norm(obj.outline, axis=1).max() * obj.side)


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
        return (rng.uniform(55, 195) + rng.uniform(-20, 20, 3)).astype(np.float32)

    kind = rng.choice(["flat", "gradient", "noise", "texture"])
    base = np.empty((height, width, 3), np.float32)
    base[:] = dull()
    xx = np.arange(width, dtype=np.float32)[None, :]  # broadcast rows and columns, no full grids
    yy = np.arange(height, dtype=np.float32)[:, None]
    if kind == "gradient":  # linear or radial
        a = rng.uniform(0, 2 * np.pi)
        if rng.random() < 0.3:
            t = np.sqrt((xx - np.float32(rng.uniform(0, width))) ** 2 + (yy - np.float32(rng.uniform(0, height))) ** 2)
        else:
            t = xx * np.float32(np.cos(a)) + yy * np.float32(np.sin(a))
        t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
        base += t[..., None] * (dull() - base[0, 0])
    elif kind == "noise":
        base += rng.standard_normal((height, width, 1), dtype=np.float32) * np.float32(rng.uniform(6, 18))
    elif kind == "texture":
        amp = np.float32(rng.uniform(5, 22))
        style = rng.choice(["stripes", "checks", "blotches"])
        period = rng.uniform(6, 60)
        if style == "stripes":
            a = rng.uniform(0, np.pi)
            k = np.float32(2 * np.pi / period)
            pattern = np.sin(xx * (np.float32(np.cos(a)) * k) + yy * (np.float32(np.sin(a)) * k))
        elif style == "checks":
            pattern = ((xx // period + yy // period) % 2) * 2 - 1
        else:
            cell = rng.uniform(10, 48)
            coarse = rng.standard_normal((max(2, int(height / cell)), max(2, int(width / cell))), dtype=np.float32)
            pattern = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
            pattern /= max(float(np.abs(pattern).max()), 1e-6)
        base += amp * pattern[..., None]
    return np.clip(base, 0, 255, out=base)


def degrade(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Sensor noise (colour or grey), mild blur and JPEG artefacts, each with some probability. uint8 RGB."""
    out = image
    if rng.random() < 0.5:
        channels = 3 if rng.random() < 0.6 else 1
        noisy = image.astype(np.float32)
        noisy += rng.standard_normal(image.shape[:2] + (channels,), dtype=np.float32) * np.float32(rng.uniform(2, 10))
        out = np.clip(noisy, 0, 255, out=noisy).astype(np.uint8)
    if rng.random() < 0.35:
        k = 3 if rng.random() < 0.7 else 5
        out = cv2.GaussianBlur(out, (k, k), rng.uniform(0.5, 1.3))
    if rng.random() < 0.35:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 92))])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return out


def paint(background: np.ndarray, objects: list[SceneObject], masks: np.ndarray) -> np.ndarray:
    """Paint each visible mask with its object's look. background: [H,W,3] float32 -> uint8."""
    image = background.astype(np.uint8)
    height, width = image.shape[:2]
    for obj, mask in zip(objects, masks):
        r = extent(obj) + 2  # paint inside the object's box only
        x0, x1 = max(int(obj.cx - r), 0), min(int(obj.cx + r) + 1, width)
        y0, y1 = max(int(obj.cy - r), 0), min(int(obj.cy + r) + 1, height)
        if x0 < x1 and y0 < y1:
            paint_object(image[y0:y1, x0:x1], mask[y0:y1, x0:x1], obj.rgb, obj.look, obj.cx - x0, obj.cy - y0, obj.side)
    return image


def random_object(rng: np.random.Generator, identity: int, height: int, width: int, *, shape: str | None = None,
                  colour: str | None = None, size: str | None = None) -> SceneObject:
    """An object with random attributes, placed fully inside the image."""
    shape = shape or str(rng.choice(SHAPES))
    colour = colour or str(rng.choice(list(COLOURS)))
    size = size or str(rng.choice(list(SIZES)))
    lo, hi = SIZES[size]
    side = rng.uniform(lo, hi) * min(height, width)
    look, rgb = random_look(rng, shape, colour)
    obj = SceneObject(identity, shape, colour, size, 0.0, 0.0, side, float(rng.uniform(0, 360)), rgb, look)
    r = extent(obj) + 1
    return obj.moved(float(rng.uniform(r, width - r)), float(rng.uniform(r, height - r)), obj.angle)


def place_inside_ring(rng: np.random.Generator, ring: SceneObject, identity: int, height: int,
                      width: int) -> SceneObject | None:
    """A small object centred in `ring`'s hole (the "inside" relation), or None if the hole is too small."""
    obj = random_object(rng, identity, height, width, size="small")
    hole = ring.hole_radius
    if extent(obj) > hole * 1.1 or obj.shape == "ring":
        return None
    off = rng.uniform(0, max(hole - extent(obj), 0) * 0.5)
    a = rng.uniform(0, 2 * np.pi)
    return obj.moved(ring.cx + off * np.cos(a), ring.cy + off * np.sin(a), obj.angle)


def inside_ring(obj: SceneObject, ring: SceneObject) -> bool:
    """Whether obj's centre lies in ring's hole (and obj is small enough to sit there)."""
    if ring.shape != "ring" or obj.identity == ring.identity:
        return False
    hole = ring.hole_radius
    return bool(np.hypot(obj.cx - ring.cx, obj.cy - ring.cy) < hole and obj.side < 2 * hole)


ASPECTS = (4 / 3, 4 / 3, 16 / 9, 16 / 9, 3 / 2, 1.0, 3 / 4, 9 / 16)  # width / height of common cameras


def random_image_size(rng: np.random.Generator, short_range: tuple[int, int] = (120, 720)) -> tuple[int, int]:
    """A (width, height) within 160x120..1280x720 at a common aspect ratio. The short side is
    lo * (hi / lo) ** (u ** 2): every size occurs, small frames (cheap to draw; the model resizes
    every frame anyway) dominate: median short side 186 px, 12% above 480 px."""
    aspect = float(rng.choice(ASPECTS))
    lo, hi = short_range
    short = lo * (hi / lo) ** (rng.random() ** 2)
    w, h = (short * aspect, short) if aspect >= 1 else (short, short / aspect)
    w = int(np.clip(round(w), MIN_SIZE[0], MAX_SIZE[0]))
    h = int(np.clip(round(h), MIN_SIZE[1], MAX_SIZE[1]))
    return w, h


def _candidate(rng: np.random.Generator, objects: list[SceneObject], identity: int, height: int,
               width: int) -> SceneObject | None:
    """A new object: inside a ring's hole, a look-alike of an object already there (same shape or
    colour, so that superlatives, positions and relations are needed to tell them apart), or random."""
    ring = next((o for o in objects if o.shape == "ring" and o.size != "small"), None)
    if ring is not None and rng.random() < 0.35:
        return place_inside_ring(rng, ring, identity, height, width)
    if objects and rng.random() < 0.35:
        other = objects[int(rng.integers(len(objects)))]
        same = rng.choice(["shape", "colour", "both"], p=[0.45, 0.35, 0.2])
        return random_object(rng, identity, height, width, shape=other.shape if same != "colour" else None,
                             colour=other.colour if same != "shape" else None)
    return random_object(rng, identity, height, width)


def draw_scene(rng: np.random.Generator, width: int = 320, height: int = 240, num_objects: int | None = None,
               degrade_image: bool = True, tries: int = 30) -> Scene:
    """Draw one scene. width x height within 160x120..1280x720; num_objects 1..6 (random if None)."""
    if not (MIN_SIZE[0] <= width <= MAX_SIZE[0] and MIN_SIZE[1] <= height <= MAX_SIZE[1]):
        raise ValueError(f"image size {width}x{height} outside {MIN_SIZE}..{MAX_SIZE}")
    n = int(num_objects if num_objects is not None else rng.integers(1, 7))
    objects: list[SceneObject] = []
    visible: list[np.ndarray] = []
    areas: list[int] = []
    for identity in range(1, n + 1):
        for _ in range(tries):
            cand = _candidate(rng, objects, identity, height, width)
            if cand is None:
                continue
            full = object_mask(cand, height, width)
            area = int(full.sum())
            # the new object is drawn on top: every object below must keep MIN_VISIBLE of its area
            kept = [v & ~full for v in visible]
            if area > 0 and all(k.sum() >= MIN_VISIBLE * a for k, a in zip(kept, areas)):
                objects.append(cand)
                visible = kept + [full]
                areas.append(area)
                break
    masks = np.stack(visible) if visible else np.zeros((0, height, width), bool)
    image = paint(draw_background(rng, height, width), objects, masks)
    if degrade_image:
        image = degrade(rng, image)
    return Scene(image, objects, masks, np.array(areas, np.int64))
