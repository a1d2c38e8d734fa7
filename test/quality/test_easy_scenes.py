"""Easy scenes through the node's stream logic at its default parameters: a trained model must get
them right, a broken one fails them. The model is HYPERSEG_MODEL_PATH when set (any model
directory), else the shipped models/hyperseg-world. Scenes are drawn by the evaluation renderer
(world/shifted.py), which training never uses: distinct shapes and colours, well apart, clean.
"""
from __future__ import annotations

import numpy as np
import pytest

from hyperseg_ros.command import Command
from hyperseg_ros.training.metrics import iou
from hyperseg_ros.world.commands import COLOUR_KNOWLEDGE, SHAPE_KNOWLEDGE
from hyperseg_ros.world.scene import SHAPES
from hyperseg_ros.world.shifted import RGB_BOXES, easy_clip, easy_scene

SCENES = range(4)  # the fixed set: seeds of easy_scene
FRAME_NS = 33_000_000


def _scene(seed: int):
    return easy_scene(np.random.default_rng([7, seed]), 320, 240, n=3)


def _answer(stream, command: Command, frames) -> list[list]:
    """Send `command`, then the frames (30 Hz stamps) -> the instances of each frame."""
    processor = stream()
    processor.apply_command(command)
    return [processor.process(f.image, (t + 1) * FRAME_NS, "camera").result.instances for t, f in enumerate(frames)]


def _target(seed: int) -> int:
    return seed % 3  # which of the three objects a command is about


@pytest.mark.parametrize("seed", SCENES)
def test_referring_finds_the_named_object(stream, seed):
    scene = _scene(seed)
    obj = scene.objects[_target(seed)]
    found = _answer(stream, Command(task="referring", text=f"find the {obj.colour} {obj.shape}"), [scene])[0]
    assert found, "no instance for an object that is there"
    assert iou(found[0].mask, scene.masks[_target(seed)]) >= 0.8


@pytest.mark.parametrize("seed", SCENES)
def test_reasoning_finds_the_inferred_object(stream, seed):
    scene = _scene(seed)
    obj = scene.objects[_target(seed)]
    if seed % 2:
        thing = next(k for k, v in COLOUR_KNOWLEDGE.items() if v == obj.colour)
        text = f"show me the shape coloured like {thing}"
    else:
        clause = next(k for k, v in SHAPE_KNOWLEDGE.items() if v == obj.shape)
        text = f"show me the shape that {clause}"
    found = _answer(stream, Command(task="reasoning", text=text), [scene])[0]
    assert found, f"no instance for {text!r}"
    assert iou(found[0].mask, scene.masks[_target(seed)]) >= 0.8


@pytest.mark.parametrize("seed", SCENES)
def test_open_vocabulary_names_each_object(stream, seed):
    scene = _scene(seed)
    present = [o.shape for o in scene.objects]
    absent = next(s for s in np.random.default_rng(seed).permutation(SHAPES) if s not in present)
    categories = tuple(np.random.default_rng(seed).permutation(present + [str(absent)]).tolist())
    found = _answer(stream, Command(task="open_vocabulary", categories=categories), [scene])[0]
    for obj, mask in zip(scene.objects, scene.masks):
        best = max(found, key=lambda inst: iou(inst.mask, mask), default=None)
        assert best is not None and iou(best.mask, mask) >= 0.5, f"{obj.shape} not found"
        assert best.label == obj.shape, f"{obj.shape} labelled {best.label!r}"
    assert not [inst for inst in found if inst.label == absent], f"absent {absent} reported"


@pytest.mark.parametrize("seed", SCENES)
def test_absent_object_gives_no_instance(stream, seed):
    scene = _scene(seed)
    colour = next(c for c in RGB_BOXES if c not in {o.colour for o in scene.objects})
    shape = next(s for s in SHAPES if s not in {o.shape for o in scene.objects})
    found = _answer(stream, Command(task="referring", text=f"find the {colour} {shape}"), [scene])[0]
    assert found == [], f"{len(found)} instance(s) for an absent {colour} {shape}"


@pytest.mark.parametrize("seed", range(2))
def test_moving_object_keeps_one_id(stream, seed):
    clip = easy_clip(np.random.default_rng([8, seed]), 320, 240, frames=12, n=2)
    mover = clip.frames[0].objects[0]
    results = _answer(stream, Command(task="open_vocabulary", categories=(mover.shape,)), clip.frames)
    ids = []
    for t, (frame, found) in enumerate(zip(clip.frames, results)):
        hits = [inst for inst in found if iou(inst.mask, frame.masks[0]) >= 0.5]
        assert hits, f"frame {t}: the moving {mover.shape} is not found"
        ids.append(hits[0].id)
    assert len(set(ids)) == 1, f"ids along the clip: {ids}"
