"""Operator commands about a scene, with their ground-truth targets.

Every referring / reasoning description is checked against every object of the scene: it is emitted
only when exactly one object satisfies it clearly and every other object clearly fails it (positions
and relations use margins, superlatives a clear gap), so a human would agree on the target. A
no-match command describes something absent; its answer is no instance.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from hyperseg_ros.command import Command
from hyperseg_ros.world.scene import COLOURS, SHAPES, Scene, SceneObject, extent, inside_ring

# ---- the words of the world -------------------------------------------------------------------------
POSITIONS = ("left", "right", "top", "bottom", "centre", "top left", "top right", "bottom left", "bottom right")
POSITION_PHRASES = {
    "left": ("on the left", "at the left", "on the left side"),
    "right": ("on the right", "at the right", "on the right side"),
    "top": ("at the top", "near the top"),
    "bottom": ("at the bottom", "near the bottom"),
    "centre": ("in the centre", "in the middle", "in the center"),
    "top left": ("in the top left", "at the top left"),
    "top right": ("in the top right", "at the top right"),
    "bottom left": ("in the bottom left", "at the bottom left"),
    "bottom right": ("in the bottom right", "at the bottom right"),
}
SUPERLATIVES = {  # word -> (key of an object, larger is "more")
    "largest": lambda o: o.side, "biggest": lambda o: o.side,
    "smallest": lambda o: -o.side,
    "leftmost": lambda o: -o.cx, "rightmost": lambda o: o.cx,
    "topmost": lambda o: -o.cy, "bottom-most": lambda o: o.cy, "lowest": lambda o: o.cy,
}
RELATIONS = {"left of": ("left of", "to the left of"), "right of": ("right of", "to the right of"),
             "above": ("above",), "below": ("below", "under"), "next to": ("next to", "beside"),
             "inside": ("inside", "in")}
NOUNS = ("shape", "one", "object", "thing")  # stand-ins when the shape is not named
REASONING_NOUNS = ("shape", "one", "object")  # the stand-ins of a reasoning phrase ("the one with ...")

# Reasoning: a property that must be inferred, mapped to the shapes or colours that have it.
CORNER_WORDS = {
    "three corners": ("triangle",), "three sides": ("triangle",), "four corners": ("square",),
    "four sides": ("square",), "four equal sides": ("square",), "six corners": ("hexagon",),
    "six sides": ("hexagon",), "no corners": ("circle", "ring"), "five points": ("star",),
    "twelve corners": ("cross",),
}
COLOUR_KNOWLEDGE = {
    "grass": "green", "a leaf": "green", "a frog": "green", "the sky": "blue", "the sea": "blue",
    "a banana": "yellow", "a lemon": "yellow", "the sun": "yellow", "snow": "white", "milk": "white",
    "coal": "black", "the night": "black", "an orange": "orange", "a carrot": "orange", "a plum": "purple",
    "a grape": "purple", "a fire truck": "red", "a tomato": "red", "blood": "red",
}
SHAPE_KNOWLEDGE = {
    "means love": "heart", "people draw on valentine cards": "heart", "looks like a plus sign": "cross",
    "looks like a first aid sign": "cross", "is shaped like a doughnut": "ring", "looks like a bagel": "ring",
    "you see in the night sky": "star", "looks like a honeycomb cell": "hexagon",
    "looks like a slice of pizza": "triangle", "looks like a coin": "circle", "looks like a wheel": "ring",
    "looks like a window pane": "square",
}
REASONING_TEMPLATES = {
    "corners": ("the {noun} with {words}", "the {noun} that has {words}"),
    "colour": ("the {noun} coloured like {words}", "the {noun} that has the colour of {words}",
               "the {noun} the colour of {words}"),
    "shape": ("the {noun} that {words}",),
}

LEADING = ("pick up", "find", "segment", "show me", "where is", "grab", "look at", "please point to",
           "point at", "get", "highlight", "track", "can you find", "locate", "give me", "select", "fetch", "")
POLITE = ("please", "kindly", "thanks", "thank you")
FILLERS = ("um", "uh", "okay", "so", "hmm", "well", "now", "just")
UNKNOWN = ("robot", "buddy", "quickly", "yeah", "erm", "thingamajig", "over", "there", "mate", "asap",
           "hurry", "carefully", "hey")  # deliberately outside the vocabulary: the model must ignore them


@dataclass(frozen=True)
class WorldCommand:
    """A command and what it should produce. targets: identities of the object(s) to segment
    (empty = no instance is the right answer); category_targets: for open vocabulary, the
    identities of each category in `command.categories` order; phrase: the description before
    the operator's wrapping; kind: which kind of description it is (per-kind metrics)."""

    command: Command
    targets: tuple[int, ...]
    category_targets: tuple[tuple[int, ...], ...] = ()
    phrase: str = ""
    kind: str = ""  # referring: attributes | position | superlative | relation; reasoning: corners |
    # colour | shape; either: no_match when nothing matches; visual prompt: box | point
    form: str = ""  # the phrase's form (kind's values other than no_match): a no-match command has one too


# ---- predicates -----------------------------------------------------------------------------------
def _third(v: float, span: float, margin: float) -> tuple[set[int], set[int]]:
    """Thirds (0, 1, 2) that coordinate v is clearly in / might be in, with a margin in pixels."""
    sure = {k for k in range(3) if k * span / 3 + margin < v < (k + 1) * span / 3 - margin}
    maybe = {k for k in range(3) if k * span / 3 - margin < v < (k + 1) * span / 3 + margin}
    return sure, maybe


_POSITION_CELLS = {"left": ({0}, None), "right": ({2}, None), "top": (None, {0}), "bottom": (None, {2}),
                   "centre": ({1}, {1}), "top left": ({0}, {0}), "top right": ({2}, {0}),
                   "bottom left": ({0}, {2}), "bottom right": ({2}, {2})}


def position_truth(obj: SceneObject, word: str, width: int, height: int) -> bool | None:
    """True if obj is clearly at `word`, False if clearly not, None when it is borderline."""
    xs, xm = _third(obj.cx, width, 0.04 * width)
    ys, ym = _third(obj.cy, height, 0.04 * height)
    cols, rows = _POSITION_CELLS[word]
    sure = (cols is None or cols & xs == cols) and (rows is None or rows & ys == rows)
    possible = (cols is None or cols & xm) and (rows is None or rows & ym)
    return True if sure else (None if possible else False)


def relation_truth(obj: SceneObject, rel: str, anchor: SceneObject, width: int, height: int) -> bool | None:
    """Spatial relation of obj to anchor: True / False clearly, None when borderline."""
    if obj.identity == anchor.identity:
        return False
    short = min(width, height)
    dx, dy = obj.cx - anchor.cx, obj.cy - anchor.cy
    if rel == "inside":
        return inside_ring(obj, anchor)
    if rel == "next to":
        gap = np.hypot(dx, dy) - extent(obj) - extent(anchor)
        return True if gap < 0.04 * short else (False if gap > 0.15 * short else None)
    along, across, span = {"left of": (-dx, dy, width), "right of": (dx, dy, width),
                           "above": (-dy, dx, height), "below": (dy, dx, height)}[rel]
    if along > 0.08 * span and abs(across) < max(along, 1.0) * 1.5:  # mostly in that direction
        return True
    return False if along < 0.01 * span else None


@dataclass(frozen=True)
class Description:
    """Plain attributes plus at most one of position / superlative / relation."""

    colour: str | None = None
    shape: str | None = None
    size: str | None = None
    position: str | None = None
    superlative: str | None = None
    relation: tuple[str, Description] | None = None

    def base_match(self, o: SceneObject) -> bool:
        return ((self.colour is None or o.colour == self.colour) and (self.shape is None or o.shape == self.shape)
                and (self.size is None or o.size == self.size))


def resolve(desc: Description, objects: list[SceneObject], width: int, height: int) -> list[int] | None:
    """Indices of the objects `desc` picks out, or None when some object is borderline (ambiguous)."""
    cands = [i for i, o in enumerate(objects) if desc.base_match(o)]
    if desc.position is not None:
        truth = [position_truth(objects[i], desc.position, width, height) for i in cands]
        if any(t is None for t in truth):
            return None
        cands = [i for i, t in zip(cands, truth) if t]
    if desc.superlative is not None and cands:
        key = SUPERLATIVES[desc.superlative]
        vals = sorted(((key(objects[i]), i) for i in cands), reverse=True)
        if desc.superlative in ("largest", "biggest", "smallest"):
            gap = 0.2 * abs(vals[0][0])  # sides differ by a fifth: visibly bigger
        else:
            gap = 0.08 * (width if desc.superlative in ("leftmost", "rightmost") else height)
        if len(vals) > 1 and vals[0][0] - vals[1][0] < gap:
            return None
        cands = [vals[0][1]]
    if desc.relation is not None:
        rel, anchor_desc = desc.relation
        anchors = resolve(anchor_desc, objects, width, height)
        if anchors is None or len(anchors) != 1:
            return None
        truth = [relation_truth(objects[i], rel, objects[anchors[0]], width, height) for i in cands]
        if any(t is None for t in truth):
            return None
        cands = [i for i, t in zip(cands, truth) if t]
    return cands


def _noun(rng: np.random.Generator, desc: Description) -> str:
    words = [w for w in (desc.size, desc.colour) if w]
    words.append(desc.shape or str(rng.choice(NOUNS)))
    return " ".join(words)


def render(rng: np.random.Generator, desc: Description) -> str:
    """Text of a description, e.g. "the small blue star on the left"."""
    if desc.superlative is not None:
        base = f"the {desc.superlative} {_noun(rng, desc)}"
    else:
        base = f"the {_noun(rng, desc)}"
    if desc.position is not None:
        base += " " + str(rng.choice(POSITION_PHRASES[desc.position]))
    if desc.relation is not None:
        rel, anchor = desc.relation
        base += f" {rng.choice(RELATIONS[rel])} {render(rng, anchor)}"
    return base


# ---- referring ------------------------------------------------------------------------------------
def _plain(rng: np.random.Generator, o: SceneObject, k: int) -> Description:
    """A description naming k (1..3) of the target's colour / shape / size, shape or colour first."""
    keys = list(rng.permutation(["colour", "shape"])) + ["size"]
    chosen = set(keys[:k])
    return Description(colour=o.colour if "colour" in chosen else None, shape=o.shape if "shape" in chosen else None,
                       size=o.size if "size" in chosen else None)


def describe(rng: np.random.Generator, objects: list[SceneObject], target: int, width: int, height: int,
             static: bool = False) -> Description | None:
    """An unambiguous description of objects[target], or None. static: only attributes that do not
    change over a clip (colour, shape, size)."""
    o = objects[target]
    styles = ["plain"] if static else list(rng.permutation(["plain", "position", "superlative", "relation"]))
    for style in styles:
        for k in rng.permutation([1, 2, 3]) if style == "plain" else (int(rng.integers(1, 3)),):
            base = _plain(rng, o, int(k))
            if style == "plain":
                options = [base]
            elif style == "position":
                options = [Description(base.colour, base.shape, base.size, position=p) for p in rng.permutation(POSITIONS)]
            elif style == "superlative":
                options = [Description(base.colour, base.shape, base.size, superlative=s)
                           for s in rng.permutation(list(SUPERLATIVES))]
            else:
                options = []
                for j in rng.permutation(len(objects)):
                    if j == target:
                        continue
                    anchor = _plain(rng, objects[j], 2)
                    for rel in rng.permutation(list(RELATIONS)):
                        options.append(Description(base.colour, base.shape, base.size, relation=(str(rel), anchor)))
            for d in options:
                if resolve(d, objects, width, height) == [target]:
                    return d
    return None


def _absent_description(rng: np.random.Generator, objects: list[SceneObject]) -> Description | None:
    present = {(o.colour, o.shape) for o in objects}
    absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
    if not absent:
        return None
    c, s = absent[rng.integers(len(absent))]
    size = str(rng.choice(["small", "medium", "large"])) if rng.random() < 0.3 else None
    return Description(colour=c, shape=s, size=size)


FORMS = ("attributes", "position", "superlative", "relation")  # what a referring phrase can look like


def form_of(desc: Description) -> str:
    return ("relation" if desc.relation else "superlative" if desc.superlative else "position" if desc.position
            else "attributes")


def _no_target_description(rng: np.random.Generator, objects: list[SceneObject], width: int, height: int,
                           form: str) -> Description | None:
    """A description of `form` that clearly picks out nothing: an absent object (in any form), or,
    for positions and relations, present objects put where none of them is. So the phrase's form
    never tells whether a target exists."""
    absent = _absent_description(rng, objects)
    options: list[Description] = []
    if form == "attributes":
        options = [absent] if absent else []
    elif form == "position":
        bases = [_plain(rng, objects[i], int(rng.integers(1, 3))) for i in rng.permutation(len(objects))]
        for base in ([absent] if absent else []) + bases[:2]:
            options += [Description(base.colour, base.shape, base.size, position=str(p))
                        for p in rng.permutation(POSITIONS)[:3]]
    elif form == "superlative" and absent:  # a present kind always has a largest, leftmost, ...
        options = [Description(absent.colour, absent.shape, None, superlative=str(rng.choice(list(SUPERLATIVES))))]
    elif form == "relation":
        for j in rng.permutation(len(objects))[:3]:
            anchor = _plain(rng, objects[j], 2)
            bases = ([absent] if absent else []) + [_plain(rng, objects[i], 2) for i in rng.permutation(len(objects))[:2]
                                                   if i != j]
            for base in bases:
                rel = str(rng.choice(list(RELATIONS)))
                options.append(Description(base.colour, base.shape, base.size, relation=(rel, anchor)))
    order = rng.permutation(len(options)) if options else []
    for k in order:
        if resolve(options[k], objects, width, height) == []:
            return options[k]
    return None


def referring(rng: np.random.Generator, scene: Scene, no_match: bool = False, static: bool = False,
              target: int | None = None) -> WorldCommand | None:
    """A referring command for one visible object of `scene` (or, with no_match, for nothing)."""
    objects, (w, h) = scene.objects, (scene.width, scene.height)
    if no_match:
        # the form a command with a target would take here, so that forms come in the same proportions
        visible = [i for i in range(len(objects)) if scene.masks[i].any()]
        d = describe(rng, objects, int(rng.choice(visible)), w, h, static) if visible else None
        first = form_of(d) if d is not None else "attributes"
        for form in [first] + [f for f in rng.permutation(FORMS) if f != first and not static]:
            d = _no_target_description(rng, objects, w, h, form)
            if d is not None:
                return _wrap(rng, "referring", render(rng, d), (), "no_match", form)
        return None
    order = [target] if target is not None else list(rng.permutation(len(objects)))
    for i in order:
        if not scene.masks[i].any():
            continue
        d = describe(rng, objects, int(i), w, h, static)
        if d is not None:
            return _wrap(rng, "referring", render(rng, d), (objects[i].identity,), form_of(d))
    return None


# ---- reasoning ------------------------------------------------------------------------------------
def _reasoning_properties() -> list[tuple[str, Callable[[SceneObject], bool], str]]:
    """(property phrase builder key, predicate, kind) for every inferable property."""
    props = []
    for words, shapes in CORNER_WORDS.items():
        props.append((words, lambda o, s=shapes: o.shape in s, "corners"))
    for thing, colour in COLOUR_KNOWLEDGE.items():
        props.append((thing, lambda o, c=colour: o.colour == c, "colour"))
    for clause, shape in SHAPE_KNOWLEDGE.items():
        props.append((clause, lambda o, s=shape: o.shape == s, "shape"))
    return props


REASONING_PROPERTIES = _reasoning_properties()


def _reasoning_text(rng: np.random.Generator, words: str, kind: str, extra: str | None) -> str:
    noun = extra or str(rng.choice(REASONING_NOUNS))
    template = str(rng.choice(REASONING_TEMPLATES[kind]))
    return template.format(noun=noun, words=words)


def reasoning(rng: np.random.Generator, scene: Scene, no_match: bool = False,
              target: int | None = None) -> WorldCommand | None:
    """A reasoning command: the target is named only by a property that must be inferred."""
    objects = scene.objects
    props = [REASONING_PROPERTIES[i] for i in rng.permutation(len(REASONING_PROPERTIES))]
    if no_match:
        for words, pred, kind in props:
            if not any(pred(o) for o in objects):
                return _wrap(rng, "reasoning", _reasoning_text(rng, words, kind, None), (), "no_match", kind)
        return None
    for words, pred, kind in props:
        hits = [i for i, o in enumerate(objects) if pred(o)]
        if not hits or (target is not None and target not in hits):
            continue
        if len(hits) == 1 and scene.masks[hits[0]].any():
            return _wrap(rng, "reasoning", _reasoning_text(rng, words, kind, None), (objects[hits[0]].identity,),
                         kind)
        # several objects have the property: name one more plain attribute to single one out (its
        # colour, "the red shape with ...", or for a colour property its shape, "the star coloured like ...")
        i = target if target is not None else hits[int(rng.integers(len(hits)))]
        extra_kind = "colour" if kind != "colour" else "shape"
        extra = getattr(objects[i], extra_kind)
        if sum(getattr(objects[j], extra_kind) == extra for j in hits) == 1 and scene.masks[i].any():
            text = _reasoning_text(rng, words, kind, f"{extra} shape" if extra_kind == "colour" else extra)
            return _wrap(rng, "reasoning", text, (objects[i].identity,), kind)
    return None


# ---- open vocabulary ------------------------------------------------------------------------------
def _conflict(a: tuple[str | None, str | None], b: tuple[str | None, str | None]) -> bool:
    """Whether some object could belong to both categories (colour, shape), None = any."""
    return all(x is None or y is None or x == y for x, y in zip(a, b))


def category_name(cat: tuple[str | None, str | None]) -> str:
    return " ".join(w for w in cat if w)


def open_vocabulary(rng: np.random.Generator, scene: Scene, count: int | None = None) -> WorldCommand:
    """1..8 non-overlapping categories (shapes, colour+shape, colours), present ones and absent ones."""
    objects = scene.objects
    count = int(count if count is not None else rng.integers(1, 9))
    present_pairs = [(o.colour, o.shape) for o in objects]
    pool: list[tuple[str | None, str | None]] = []
    for _ in range(4 * count):  # draw about half the categories from what is in the scene
        if rng.random() < 0.55 and present_pairs:
            c, s = present_pairs[rng.integers(len(present_pairs))]
        else:
            c, s = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
        kind = rng.choice(["shape", "colour shape", "colour"], p=[0.4, 0.35, 0.25])
        pool.append((None, s) if kind == "shape" else ((c, None) if kind == "colour" else (c, s)))
    chosen: list[tuple[str | None, str | None]] = []
    for cat in pool:
        if len(chosen) < count and not any(_conflict(cat, other) for other in chosen):
            chosen.append(cat)
    # Drawn categories that overlap an earlier one are dropped, and present ones overlap more: in
    # drawing order the first place would most often be present. The list's order carries nothing.
    chosen = [chosen[i] for i in rng.permutation(len(chosen))]
    targets = tuple(tuple(o.identity for o, m in zip(objects, scene.masks)
                          if m.any() and _conflict(cat, (o.colour, o.shape))) for cat in chosen)
    names = tuple(category_name(c) for c in chosen)
    case = _case_style(rng)  # one letter case for the list, or (sometimes) one per category
    cases = [_case_style(rng) if rng.random() < 0.3 else case for _ in names]
    cmd = Command(task="open_vocabulary", categories=tuple(c(n) for c, n in zip(cases, names)))
    return WorldCommand(cmd, tuple(sorted({i for t in targets for i in t})), targets, ", ".join(names))


# ---- visual prompts -------------------------------------------------------------------------------
def prompt_point(rng: np.random.Generator, mask: np.ndarray) -> tuple[float, float]:
    """A point well inside a mask (among the pixels farthest from its border). -> (x, y) pixels."""
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    ys, xs = np.nonzero(dist >= 0.5 * dist.max())
    k = int(rng.integers(len(xs)))
    return float(xs[k]) + 0.5, float(ys[k]) + 0.5


def prompt_box(rng: np.random.Generator, mask: np.ndarray) -> tuple[float, float, float, float]:
    """The mask's tight box, each side jittered by up to 5% of the box size. -> (x, y, w, h) pixels."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    bw, bh = x1 - x0, y1 - y0
    jit = rng.uniform(-0.05, 0.05, 4) * (bw, bh, bw, bh)
    h, w = mask.shape
    x0, y0 = np.clip(x0 + jit[0], 0, w - 1), np.clip(y0 + jit[1], 0, h - 1)
    x1, y1 = np.clip(x1 + jit[2], x0 + 1, w), np.clip(y1 + jit[3], y0 + 1, h)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def visual_prompt(rng: np.random.Generator, scene: Scene, kind: str = "box", min_area: int = 30,
                  target: int | None = None) -> WorldCommand | None:
    """A box or a point on one clearly visible object."""
    order = [target] if target is not None else list(rng.permutation(len(scene.objects)))
    for i in order:
        mask = scene.masks[i]
        if mask.sum() < min_area:
            continue
        if kind == "box":
            cmd = Command(task="visual_prompt", boxes=(prompt_box(rng, mask),))
        else:
            cmd = Command(task="visual_prompt", points=(prompt_point(rng, mask),))
        return WorldCommand(cmd, (scene.objects[i].identity,), phrase=kind, kind=kind)
    return None


# ---- operator phrasing ----------------------------------------------------------------------------
def _case_style(rng: np.random.Generator) -> Callable[[str], str]:
    style = rng.choice(["lower", "lower", "sentence", "upper", "title", "random"])
    if style == "upper":
        return str.upper
    if style == "title":
        return str.title
    if style == "sentence":
        return lambda s: s[:1].upper() + s[1:]
    if style == "random":
        flips = rng.random(256) < 0.3
        return lambda s: "".join(c.upper() if flips[i % 256] else c for i, c in enumerate(s))
    return str


def operator_phrasing(rng: np.random.Generator, phrase: str) -> str:
    """Wrap a description the way people talk to robots: a leading phrase, politeness, fillers,
    unknown words, any letter case, trailing punctuation."""
    words = phrase.split()
    lead = str(rng.choice(LEADING))
    if rng.random() < 0.15:  # "the" is often dropped in speech
        words = words[1:] if words and words[0] == "the" else words
    out = (lead.split() if lead else []) + words
    for pool, p in ((FILLERS, 0.3), (UNKNOWN, 0.2)):
        if rng.random() < p:
            out.insert(int(rng.integers(0, len(out) + 1)), str(rng.choice(pool)))
    if rng.random() < 0.2:
        out.insert(0, str(rng.choice(POLITE)))
    text = " ".join(out)
    if rng.random() < 0.1:
        text += ", " + str(rng.choice(POLITE))
    text = _case_style(rng)(text) + str(rng.choice(["", "", ".", "!", "?", "...", " please."]))
    return text


def _wrap(rng: np.random.Generator, task: str, phrase: str, targets: tuple[int, ...], kind: str,
          form: str | None = None) -> WorldCommand:
    return WorldCommand(Command(task=task, text=operator_phrasing(rng, phrase)), targets, phrase=phrase, kind=kind,
                        form=form or kind)


def sample_command(rng: np.random.Generator, scene: Scene, task: str, no_match_rate: float = 0.1,
                   static: bool = False) -> WorldCommand:
    """One command of `task` (referring | reasoning | open_vocabulary | visual_prompt[_box|_point])."""
    for _ in range(8):
        no_match = rng.random() < no_match_rate
        if task == "referring":
            wc = referring(rng, scene, no_match=no_match, static=static)
        elif task == "reasoning":
            wc = reasoning(rng, scene, no_match=no_match)
        elif task == "open_vocabulary":
            wc = open_vocabulary(rng, scene)
        elif task.startswith("visual_prompt"):
            kind = task.split("_")[-1] if task.count("_") == 2 else str(rng.choice(["box", "point"]))
            wc = visual_prompt(rng, scene, kind)
        else:
            raise ValueError(f"unknown task {task!r}")
        if wc is not None:
            return wc
    if task.startswith("visual_prompt"):  # only tiny objects: prompt the largest visible one anyway
        areas = scene.masks.reshape(len(scene.objects), -1).sum(1)
        return visual_prompt(rng, scene, "point" if task.endswith("point") else "box", 1, int(areas.argmax()))
    # nothing describable: an absent object is always a valid (no-match) command
    wc = (reasoning if task == "reasoning" else referring)(rng, scene, no_match=True)
    if wc is None:
        raise RuntimeError("scene admits no command")
    return wc
