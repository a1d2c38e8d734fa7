"""The `shifted` evaluation world: a second renderer of ../shared/design/synthetic-world.md, written
apart from the training generator (scene.py, looks.py, video.py) with its own geometry code and
parameters, still inside the spec. Training never imports it, so the `shifted` split measures how
far the model generalises beyond the drawings it was trained on.

What differs from the training generator: shapes are implicit functions (signed distances, the
heart's algebraic curve) sampled 2x2 per pixel, so edges are anti-aliased and the mask is the
pixels at least half covered; colours come from RGB boxes, not HSV ranges; paint is flat, a
highlight or an inked outline; backgrounds are paper-like sums of sinusoids, two-colour blends,
tiled lines or grain; degradation is shot noise, box blur or down-and-up scaling, and JPEG;
look-alikes are more frequent; clips move with a sinusoidal wobble and bounce frame by frame.
Scenes and clips use the shared containers (Scene, SceneObject, Clip) so that commands and
metrics work unchanged.
"""
from __future__ import annotations

import cv2
import numpy as np

from hyperseg_ros.world.looks import Look
from hyperseg_ros.world.scene import MIN_VISIBLE, SHAPES, SIZES, Scene, SceneObject
from hyperseg_ros.world.video import MAX_HIDDEN, Clip

# ---- colours: an RGB box per name ---------------------------------------------------------------
RGB_BOXES = {
    "red": ((185, 250), (0, 45), (15, 60)),
    "green": ((15, 75), (135, 205), (30, 95)),
    "blue": ((10, 60), (55, 125), (185, 255)),
    "yellow": ((230, 255), (205, 240), (0, 70)),
    "orange": ((235, 255), (115, 160), (0, 45)),
    "purple": ((105, 160), (20, 70), (145, 205)),
    "white": ((236, 255), (236, 255), (236, 255)),
    "black": ((0, 32), (0, 32), (0, 32)),
}
HOLES = (0.38, 0.66)  # ring hole / outer radius


def box_colour(rng: np.random.Generator, colour: str) -> np.ndarray:
    return np.array([rng.uniform(lo, hi) for lo, hi in RGB_BOXES[colour]], np.float32)


# ---- geometry: signed distance in units of the half side (inside < 0) ---------------------------
def _polygon_sdf(vertices: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance of points (u, v) to a closed polygon (even-odd inside test)."""
    dist = np.full(u.shape, np.inf, np.float32)
    inside = np.zeros(u.shape, bool)
    n = len(vertices)
    for k in range(n):
        (ax, ay), (bx, by) = vertices[k], vertices[(k + 1) % n]
        ex, ey = bx - ax, by - ay
        t = np.clip(((u - ax) * ex + (v - ay) * ey) / (ex * ex + ey * ey), 0, 1)
        dist = np.minimum(dist, np.hypot(u - ax - t * ex, v - ay - t * ey))
        crosses = (ay > v) != (by > v)
        inside ^= crosses & (u < ax + (v - ay) * ex / np.where(by - ay == 0, 1e-9, by - ay))
    return np.where(inside, -dist, dist)


def _fit(vertices: np.ndarray) -> np.ndarray:
    """Scale and centre vertices so their bounding box's longer side spans -1..1."""
    lo, hi = vertices.min(0), vertices.max(0)
    return (vertices - (lo + hi) / 2) * (2 / (hi - lo).max())


def geometry(rng: np.random.Generator, shape: str) -> dict:
    """This renderer's random parameters of one shape."""
    if shape == "square":
        return {"round": rng.uniform(0, 0.35) if rng.random() < 0.5 else 0.0}
    if shape == "triangle":
        apex = np.deg2rad(rng.uniform(52, 68))  # equilateral to slightly isosceles
        half = np.tan(apex / 2)
        verts = _fit(np.array([[0, -1], [half * 2, 1], [-half * 2, 1]], np.float64))
        return {"vertices": verts, "round": rng.uniform(0, 0.15) if rng.random() < 0.3 else 0.0}
    if shape == "hexagon":
        t = np.arange(6) * np.pi / 3 + (np.pi / 6 if rng.random() < 0.5 else 0.0)
        return {"vertices": _fit(np.stack([np.cos(t), np.sin(t)], 1)), "round": rng.uniform(0, 0.12)}
    if shape == "star":
        inner = rng.uniform(0.36, 0.52)
        t = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, inner)
        return {"vertices": _fit(np.stack([r * np.cos(t), r * np.sin(t)], 1)), "round": rng.uniform(0, 0.05)}
    if shape == "cross":
        return {"arm": rng.uniform(0.26, 0.40), "round": rng.uniform(0, 0.08)}
    if shape == "heart":
        return {"squash": rng.uniform(0.9, 1.1)}
    if shape == "ring":
        return {"hole": rng.uniform(*HOLES)}
    return {}


def signed_distance(shape: str, params: dict, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside where < 0; (u, v) in units of the half side, unrotated, y down."""
    r = params.get("round", 0.0)
    if shape == "circle":
        return np.hypot(u, v) - 1
    if shape == "ring":
        d = np.hypot(u, v)
        return np.maximum(d - 1, params["hole"] - d)
    if shape == "square":  # rounded box
        qx, qy = np.abs(u) - (1 - r), np.abs(v) - (1 - r)
        return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r
    if shape == "cross":
        a = params["arm"]
        bar = lambda x, y: np.maximum(np.abs(x) - (1 - r), np.abs(y) - (a - r))  # noqa: E731
        return np.minimum(bar(u, v), bar(v, u)) - r
    if shape == "heart":  # (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, y up, fitted to -1..1
        x, y = u * 1.16, -(v * 1.16 * params["squash"] + 0.16)
        f = (x * x + y * y - 1) ** 3 - x * x * y**3
        return np.cbrt(f)
    return _polygon_sdf(params["vertices"] * (1 - r), u, v) - r


def coverage(obj: SceneObject, params: dict, height: int, width: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Fraction of each pixel the object covers (2x2 samples) in its box. -> (cover [h,w] float32, box)."""
    reach = obj.side * 0.75 + 2
    x0, x1 = max(int(obj.cx - reach), 0), min(int(obj.cx + reach) + 1, width)
    y0, y1 = max(int(obj.cy - reach), 0), min(int(obj.cy + reach) + 1, height)
    box = (slice(y0, max(y1, y0)), slice(x0, max(x1, x0)))
    if x1 <= x0 or y1 <= y0:
        return np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.float32), box
    ys = np.arange(y0, y1, 0.5, dtype=np.float32) + 0.25
    xs = np.arange(x0, x1, 0.5, dtype=np.float32) + 0.25
    dx, dy = xs[None, :] - obj.cx, ys[:, None] - obj.cy
    a = np.deg2rad(obj.angle)
    half = obj.side / 2
    u = (dx * np.cos(a) + dy * np.sin(a)) / half
    v = (-dx * np.sin(a) + dy * np.cos(a)) / half
    inside = (signed_distance(obj.shape, params, u, v) <= 0).astype(np.float32)
    cover = inside.reshape(y1 - y0, 2, x1 - x0, 2).mean((1, 3))
    return cover, box


# ---- paint, backgrounds, degradation ------------------------------------------------------------
def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    grey = rng.uniform(70, 185)
    tint = rng.uniform(-14, 14, 3)
    base = np.zeros((height, width, 3), np.float32) + (grey + tint).astype(np.float32)
    kind = rng.choice(["plain", "blend", "paper", "tiles", "grain"])
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xx = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    if kind == "blend":  # two greys along x or y
        other = (rng.uniform(70, 185) + rng.uniform(-14, 14, 3)).astype(np.float32)
        t = (xx if rng.random() < 0.5 else yy) + 0 * (xx + yy)
        base = base * (1 - t[..., None]) + other * t[..., None]
    elif kind == "paper":  # a few soft waves
        field = np.zeros((height, width), np.float32)
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.5, 4), rng.uniform(0.5, 4), rng.uniform(0, 2 * np.pi)
            field += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
        base += rng.uniform(3, 10) * field[..., None]
    elif kind == "tiles":  # thin darker lines on a grid
        step = int(rng.integers(12, 48))
        lines = np.zeros((height, width), bool)
        lines[::step, :] = True
        lines[:, ::step] = True
        base[lines] -= rng.uniform(12, 30)
    elif kind == "grain":
        base += rng.normal(0, rng.uniform(4, 14), (height, width, 1)).astype(np.float32)
    return np.clip(base, 0, 255)


def _paint(image: np.ndarray, obj: SceneObject, cover: np.ndarray, box, fill: str, rgb: np.ndarray,
           params: dict) -> None:
    """Alpha-blend one object over image (float32, in place) with anti-aliased edges."""
    region = image[box]
    colour = np.broadcast_to(rgb, region.shape).copy()
    h, w = cover.shape
    if fill == "highlight":  # a soft bright spot on the upper left
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = obj.cx - box[1].start - obj.side * 0.2, obj.cy - box[0].start - obj.side * 0.2
        spot = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * (obj.side * 0.25) ** 2))
        colour += (spot * 45)[..., None]
    elif fill == "inked":  # a dark line along the inside of the outline
        solid = (cover > 0).astype(np.uint8)
        width = max(1, int(round(obj.side * 0.04)))
        core = cv2.erode(solid, np.ones((2 * width + 1, 2 * width + 1), np.uint8), borderType=cv2.BORDER_CONSTANT,
                         borderValue=0)
        colour[(solid - core).astype(bool)] = rgb * 0.45 if rgb.mean() > 60 else rgb + 70
    alpha = cover[..., None]
    region[:] = region * (1 - alpha) + np.clip(colour, 0, 255) * alpha


def _degrade(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    out = image.astype(np.float32)
    if rng.random() < 0.5:  # shot noise: stronger on bright pixels
        out += rng.normal(0, 1, out.shape).astype(np.float32) * np.sqrt(out + 1) * rng.uniform(0.2, 0.6)
    out = np.clip(out, 0, 255).astype(np.uint8)
    blur = rng.choice(["none", "box", "rescale"], p=[0.6, 0.2, 0.2])
    h, w = out.shape[:2]
    if blur == "box":
        out = cv2.blur(out, (3, 3))
    elif blur == "rescale":
        f = rng.uniform(0.55, 0.8)
        small = cv2.resize(out, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.4:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 86))])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return out


# ---- objects and scenes ---------------------------------------------------------------------------
class _Drawn:
    """One object with this renderer's parameters (geometry, paint)."""

    def __init__(self, rng: np.random.Generator, obj: SceneObject):
        self.params = geometry(rng, obj.shape)
        self.rgb = box_colour(rng, obj.colour)
        self.fill = str(rng.choice(["flat", "highlight", "inked"], p=[0.5, 0.25, 0.25]))
        self.obj = obj

    def at(self, cx: float, cy: float, angle: float) -> SceneObject:
        return self.obj.moved(cx, cy, angle)


def _new_object(rng: np.random.Generator, identity: int, height: int, width: int, others: list[_Drawn]) -> _Drawn:
    shape, colour = str(rng.choice(SHAPES)), str(rng.choice(list(RGB_BOXES)))
    if others and rng.random() < 0.45:  # a look-alike of an object already there
        other = others[int(rng.integers(len(others)))].obj
        which = rng.random()
        shape = other.shape if which < 0.6 else shape
        colour = other.colour if which >= 0.4 else colour
    size = str(rng.choice(list(SIZES)))
    lo, hi = SIZES[size]
    side = float(rng.uniform(lo, hi) * min(height, width))
    reach = side * 0.72 + 1
    cx, cy = rng.uniform(reach, width - reach), rng.uniform(reach, height - reach)
    obj = SceneObject(identity, shape, colour, size, float(cx), float(cy), side, float(rng.uniform(0, 360)))
    drawn = _Drawn(rng, obj)
    rgb = tuple(int(c) for c in drawn.rgb)
    hole = drawn.params.get("hole", 0.55)
    drawn.obj = SceneObject(identity, shape, colour, size, obj.cx, obj.cy, side, obj.angle, rgb, Look(hole=hole))
    return drawn


def _inside(rng: np.random.Generator, ring: _Drawn, identity: int, height: int, width: int) -> _Drawn | None:
    """A small object in a ring's hole (the "inside" relation)."""
    hole = ring.obj.hole_radius
    drawn = _new_object(rng, identity, height, width, [])
    if drawn.obj.shape == "ring" or drawn.obj.size != "small" or drawn.obj.side * 0.72 > hole:
        return None
    drawn.obj = drawn.at(ring.obj.cx, ring.obj.cy, drawn.obj.angle)
    return drawn


def _render(rng: np.random.Generator, drawn: list[_Drawn], objects: list[SceneObject], background: np.ndarray,
            degrade: bool) -> Scene:
    height, width = background.shape[:2]
    image = background.copy()
    full = np.zeros((len(objects), height, width), bool)
    for k, (d, obj) in enumerate(zip(drawn, objects)):
        cover, box = coverage(obj, d.params, height, width)
        if cover.size:
            _paint(image, obj, cover, box, d.fill, d.rgb, d.params)
            full[k][box] = cover >= 0.5
    masks = full.copy()
    for k in range(len(objects) - 1, 0, -1):  # what is above hides what is below
        masks[:k] &= ~full[k]
    areas = full.reshape(len(objects), -1).sum(1).astype(np.int64)
    out = np.clip(image, 0, 255).astype(np.uint8)
    return Scene(_degrade(rng, out) if degrade else out, objects, masks, areas)


def _layout(rng: np.random.Generator, width: int, height: int, n: int, tries: int = 25) -> list[_Drawn]:
    drawn: list[_Drawn] = []
    covered: list[np.ndarray] = []  # visible masks so far
    areas: list[int] = []
    for identity in range(1, n + 1):
        for _ in range(tries):
            ring = next((d for d in drawn if d.obj.shape == "ring" and d.obj.size == "large"), None)
            if ring is not None and rng.random() < 0.4:
                cand = _inside(rng, ring, identity, height, width)
            else:
                cand = _new_object(rng, identity, height, width, drawn)
            if cand is None:
                continue
            cover, box = coverage(cand.obj, cand.params, height, width)
            mask = np.zeros((height, width), bool)
            mask[box] = cover >= 0.5
            if not mask.any():
                continue
            kept = [c & ~mask for c in covered]
            if all(k.sum() >= MIN_VISIBLE * a for k, a in zip(kept, areas)):
                drawn.append(cand)
                covered = kept + [mask]
                areas.append(int(mask.sum()))
                break
    return drawn


def draw_scene(rng: np.random.Generator, width: int = 320, height: int = 240, num_objects: int | None = None,
               degrade_image: bool = True) -> Scene:
    """One still image of the shifted world."""
    n = int(num_objects if num_objects is not None else rng.integers(1, 7))
    drawn = _layout(rng, width, height, n)
    background = _background(rng, height, width)
    return _render(rng, drawn, [d.obj for d in drawn], background, degrade_image)


def _motion(rng: np.random.Generator, obj: SceneObject, frames: int, width: int, height: int) -> np.ndarray:
    """[T, 3] (cx, cy, angle): constant velocity with a sinusoidal wobble, bouncing frame by frame;
    a quarter of the objects pass through a border instead (they leave or enter the view)."""
    short = min(width, height)
    speed = rng.uniform(0.004, 0.03) * short
    heading = rng.uniform(0, 2 * np.pi)
    vx, vy = speed * np.cos(heading), speed * np.sin(heading)
    wobble, period, phase = rng.uniform(0, 0.004) * short, rng.uniform(4, 12), rng.uniform(0, 2 * np.pi)
    spin = rng.uniform(-5, 5) if rng.random() < 0.6 else 0.0
    passes = rng.random() < 0.25
    r = obj.side * 0.72
    x, y = obj.cx, obj.cy
    if passes and rng.random() < 0.5:  # start outside, come in
        x, y = x - vx * frames * 0.4, y - vy * frames * 0.4
    out = []
    for t in range(frames):
        w = wobble * np.sin(2 * np.pi * t / period + phase)
        out.append((x - vy / max(speed, 1e-6) * w, y + vx / max(speed, 1e-6) * w, (obj.angle + spin * t) % 360))
        x, y = x + vx, y + vy
        if not passes:
            if not r <= x <= width - r:
                vx, x = -vx, float(np.clip(x, r, width - r))
            if not r <= y <= height - r:
                vy, y = -vy, float(np.clip(y, r, height - r))
    return np.array(out, np.float64)


def _longest_hidden(scenes: list[Scene]) -> int:
    worst = 0
    for i in range(len(scenes[0].objects)):
        run = 0
        for s in scenes:
            run = run + 1 if s.full_areas[i] > 0 and not s.masks[i].any() else 0
            worst = max(worst, run)
    return worst


def draw_clip(rng: np.random.Generator, width: int = 320, height: int = 240, frames: int = 16,
              num_objects: int | None = None, degrade_image: bool = True, tries: int = 20) -> Clip:
    """A clip of the shifted world; full occlusions last at most MAX_HIDDEN frames."""
    for _ in range(tries):
        n = int(num_objects if num_objects is not None else rng.integers(1, 6))
        drawn = _layout(rng, width, height, n)
        paths = [_motion(rng, d.obj, frames, width, height) for d in drawn]
        if len(drawn) > 1 and rng.random() < 0.3:  # the top object sweeps over another one mid-clip
            k = int(rng.integers(len(drawn) - 1))
            t0 = frames // 2
            offset = paths[-1][t0, :2] - paths[k][t0, :2]
            paths[-1][:, :2] -= offset
        background = _background(rng, height, width)
        scenes = [_render(rng, drawn, [d.at(*p[t]) for d, p in zip(drawn, paths)], background, degrade_image)
                  for t in range(frames)]
        if _longest_hidden(scenes) <= MAX_HIDDEN:
            return Clip(scenes)
    raise RuntimeError("could not draw a shifted clip within the occlusion limit")


# ---- easy scenes: the quality tests' fixed set ------------------------------------------------------
def easy_objects(rng: np.random.Generator, width: int, height: int, n: int = 3) -> list[_Drawn]:
    """n objects of distinct shapes and distinct colours, medium or large, flat, well apart (one per
    cell of a row), unrotated enough to read at a glance."""
    shapes = rng.permutation(SHAPES)[:n]
    colours = rng.permutation(list(RGB_BOXES))[:n]
    cell = width / n
    drawn = []
    for k, (shape, colour) in enumerate(zip(shapes, colours)):
        size = str(rng.choice(["medium", "large"]))
        lo, hi = SIZES[size]
        side = float(min(rng.uniform(lo, hi) * min(height, width), cell * 0.8))
        cx = cell * (k + 0.5) + rng.uniform(-0.05, 0.05) * cell
        cy = height / 2 + rng.uniform(-0.15, 0.15) * height
        obj = SceneObject(k + 1, str(shape), str(colour), size, float(cx), float(cy), side, float(rng.uniform(-15, 15)))
        d = _Drawn(rng, obj)
        d.fill = "flat"
        d.obj = SceneObject(k + 1, obj.shape, obj.colour, size, obj.cx, obj.cy, side, obj.angle,
                            tuple(int(c) for c in d.rgb), Look(hole=d.params.get("hole", 0.55)))
        drawn.append(d)
    return drawn


def easy_scene(rng: np.random.Generator, width: int = 320, height: int = 240, n: int = 3) -> Scene:
    """A still anyone reads at once: distinct shapes and colours, apart, plain background, clean."""
    drawn = easy_objects(rng, width, height, n)
    background = np.zeros((height, width, 3), np.float32) + np.float32(rng.uniform(100, 160))
    return _render(rng, drawn, [d.obj for d in drawn], background, degrade=False)


def easy_clip(rng: np.random.Generator, width: int = 320, height: int = 240, frames: int = 12, n: int = 2) -> Clip:
    """An easy clip: the first object moves steadily up or down its own column, the others stay;
    nothing is occluded."""
    drawn = easy_objects(rng, width, height, n)
    background = np.zeros((height, width, 3), np.float32) + np.float32(rng.uniform(100, 160))
    mover = drawn[0].obj
    start, end = (0.3, 0.7) if rng.random() < 0.5 else (0.7, 0.3)
    scenes = []
    for t in range(frames):
        objects = [d.obj for d in drawn]
        cy = height * (start + (end - start) * t / max(frames - 1, 1))
        objects[0] = mover.moved(mover.cx, cy, mover.angle)
        scenes.append(_render(rng, drawn, objects, background, degrade=False))
    return Clip(scenes)
