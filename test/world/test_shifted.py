"""The evaluation renderer (world/shifted.py): inside the spec, reproducible, and kept out of training."""
import ast
from pathlib import Path

import numpy as np
import pytest

from hyperseg_ros.world import shifted
from hyperseg_ros.world.commands import sample_command
from hyperseg_ros.world.scene import SIZES, SceneObject
from hyperseg_ros.world.video import MAX_HIDDEN

ROOT = Path(__file__).resolve().parents[2]


def test_same_seed_same_scene():
    a = shifted.draw_scene(np.random.default_rng(5), 320, 240)
    b = shifted.draw_scene(np.random.default_rng(5), 320, 240)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks) and a.objects == b.objects


@pytest.mark.parametrize("size", [(160, 120), (480, 640), (1280, 720)])
def test_scenes_follow_the_occlusion_and_size_rules(size):
    for seed in range(6):
        scene = shifted.draw_scene(np.random.default_rng(seed), *size, degrade_image=False)
        assert 1 <= len(scene.objects) <= 6 and scene.image.shape == (size[1], size[0], 3)
        assert scene.masks.sum(0).max() <= 1
        assert (scene.visible_fraction() >= 0.30 - 1e-9).all()
        for obj, mask in zip(scene.objects, scene.masks):
            lo, hi = SIZES[obj.size]
            assert mask.any() and lo - 1e-9 <= obj.side / min(size) <= hi + 1e-9


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "star", "hexagon", "ring", "cross", "heart"])
def test_every_shape_fills_about_its_side(shape):
    obj = SceneObject(1, shape, "red", "large", 160.0, 120.0, 100.0, 0.0)
    cover, box = shifted.coverage(obj, shifted.geometry(np.random.default_rng(0), shape), 240, 320)
    mask = np.zeros((240, 320), bool)
    mask[box] = cover >= 0.5
    ys, xs = np.nonzero(mask)
    assert 90 <= max(np.ptp(xs), np.ptp(ys)) + 1 <= 102
    assert (shape == "ring") == (not mask[120, 160])  # only the ring has a hole at its centre


def test_commands_work_on_shifted_scenes_and_clips_keep_identities():
    rng = np.random.default_rng(1)
    for _ in range(5):
        scene = shifted.draw_scene(rng, 320, 240)
        for task in ("referring", "reasoning", "open_vocabulary", "visual_prompt"):
            assert sample_command(rng, scene, task).command.task == task
    clip = shifted.draw_clip(np.random.default_rng(2), 320, 240, frames=12)
    assert len(clip.frames) == 12 and clip.longest_hidden() <= MAX_HIDDEN
    assert all([o.identity for o in f.objects] == clip.identities for f in clip.frames)


def test_easy_scenes_have_distinct_shapes_and_colours_apart():
    for seed in range(5):
        scene = shifted.easy_scene(np.random.default_rng(seed), 320, 240, n=3)
        assert len({o.shape for o in scene.objects}) == 3 and len({o.colour for o in scene.objects}) == 3
        assert (scene.visible_fraction() == 1.0).all()


def test_training_never_imports_the_evaluation_renderer():
    for path in list((ROOT / "hyperseg_ros" / "training").glob("*.py")) + list((ROOT / "hyperseg_ros" / "world").glob("*.py")):
        if path.name in ("evaluate.py", "shifted.py"):
            continue
        tree = ast.parse(path.read_text())
        names = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        names |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert not any("shifted" in name for name in names), path
