"""Shortcut audit of the world: how often a rule that does not read the command gets it right.

A model can score well on its own generator by reading the generator's habits instead of the
words. For every kind of command drawn as training draws them, each rule below picks an answer
from the image alone (or from the list's order); its share of right answers is set against
chance (a uniform guess among the same options):
- referring / reasoning with a target: the largest, the most central, the most saturated and the
  most isolated visible object (a superlative or position that names the rule's own property,
  "the largest ...", "... in the centre", is left out of that rule's count: there the words say it);
- open vocabulary: each object named after the first, or the last, category of the list;
- no target: the share of commands without a target per phrase form, against the overall share
  (a form that says "nothing here" is a shortcut).

    python -P -m hyperseg_ros.world.audit            # markdown table (the model card's)
"""
from __future__ import annotations

import argparse
import colorsys
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from hyperseg_ros.world.commands import WorldCommand, sample_command
from hyperseg_ros.world.scene import Scene, draw_scene, random_image_size
from hyperseg_ros.world.splits import sample_rng

NO_MATCH_RATE = 0.2  # as training.dataset.image_batch draws them
TOLERANCE = 0.10  # a rule may beat chance by at most this much


@dataclass
class Row:
    kind: str
    rule: str
    right: float
    chance: float
    n: int

    @property
    def excess(self) -> float:
        return self.right - self.chance


def _visible(scene: Scene) -> list[int]:
    return [i for i, m in enumerate(scene.masks) if m.any()]


def _pick(scene: Scene, rule: str) -> int:
    """Index of the visible object a rule picks from the image alone."""
    visible = _visible(scene)
    objects = scene.objects
    if rule == "largest":
        return max(visible, key=lambda i: scene.masks[i].sum())
    if rule == "most central":
        return min(visible, key=lambda i: np.hypot(objects[i].cx - scene.width / 2, objects[i].cy - scene.height / 2))
    if rule == "most saturated":
        return max(visible, key=lambda i: colorsys.rgb_to_hsv(*(c / 255 for c in objects[i].rgb))[1])
    if rule == "most isolated":
        def gap(i):
            others = [np.hypot(objects[i].cx - objects[j].cx, objects[i].cy - objects[j].cy) for j in visible if j != i]
            return min(others, default=0.0)
        return max(visible, key=gap)
    raise ValueError(rule)


PICK_RULES = ("largest", "most central", "most saturated", "most isolated")
SAID_BY_WORDS = {"largest": ("largest", "biggest"), "most central": ("centre", "center", "middle")}


def _draw(task: str, n: int, split: str) -> list[tuple[Scene, WorldCommand]]:
    out = []
    for i in range(n):
        rng = sample_rng(split, i, stream=7)
        scene = draw_scene(rng, *random_image_size(rng))
        out.append((scene, sample_command(rng, scene, task, NO_MATCH_RATE)))
    return out


def _pick_rows(task: str, draws) -> list[Row]:
    rows = []
    with_target = [(s, wc) for s, wc in draws if wc.targets]
    for kind in sorted({wc.kind for _, wc in with_target}):
        for rule in PICK_RULES:
            right, chance = [], []
            for scene, wc in with_target:
                if wc.kind != kind or any(w in wc.phrase.split() for w in SAID_BY_WORDS.get(rule, ())):
                    continue
                visible = _visible(scene)
                right.append(scene.objects[_pick(scene, rule)].identity == wc.targets[0])
                chance.append(1 / len(visible))
            if right:
                rows.append(Row(f"{task}: {kind}", rule, float(np.mean(right)), float(np.mean(chance)), len(right)))
    return rows


def _form_rows(task: str, draws) -> list[Row]:
    """No-target share per phrase form, against the overall share."""
    absent = np.array([not wc.targets for _, wc in draws], float)
    forms = np.array([wc.form for _, wc in draws])
    return [Row(f"{task}: no target", f"phrase form '{form}'", float(absent[forms == form].mean()),
                float(absent.mean()), int((forms == form).sum())) for form in sorted(set(forms))]


def _list_rows(draws) -> list[Row]:
    """Open vocabulary: every object named after the first (last) category of its list."""
    rows = []
    for rule, k in (("first category", 0), ("last category", -1)):
        right, chance = [], []
        for _, wc in draws:
            for index, ids in enumerate(wc.category_targets):
                for _ in ids:
                    right.append(index == range(len(wc.category_targets))[k])
                    chance.append(1 / len(wc.category_targets))
        rows.append(Row("open_vocabulary: object's category", rule, float(np.mean(right)), float(np.mean(chance)),
                        len(right)))
    return rows


def audit(n: int = 400, split: str = "train") -> list[Row]:
    """Every rule on `n` commands per task drawn as training draws them."""
    rows: list[Row] = []
    for task in ("referring", "reasoning"):
        draws = _draw(task, n, split)
        rows += _pick_rows(task, draws) + _form_rows(task, draws)
    rows += _list_rows(_draw("open_vocabulary", n, split))
    return rows


def markdown(rows: list[Row]) -> str:
    by_kind: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_kind[row.kind].append(row)
    lines = ["| command kind | rule that does not read the words | right | chance | n |", "|---|---|---|---|---|"]
    for kind, group in by_kind.items():
        for row in group:
            flag = " ⚠" if row.excess > TOLERANCE else ""
            lines.append(f"| {kind} | {row.rule} | {row.right:.2f}{flag} | {row.chance:.2f} | {row.n} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[Row]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=400, help="commands per task")
    p.add_argument("--split", default="train")
    args = p.parse_args(argv)
    rows = audit(args.samples, args.split)
    print(markdown(rows))
    worst = max(rows, key=lambda r: r.excess)
    print(f"largest excess over chance: {worst.excess:+.2f} ({worst.kind}, {worst.rule}); tolerance {TOLERANCE:+.2f}")
    return rows


if __name__ == "__main__":
    main()
