"""Clips: persistent identities, motion, bounded full occlusion, reproducibility."""
import numpy as np
import pytest

from hyperseg_ros.world.video import MAX_HIDDEN, draw_clip


def test_clip_is_reproducible_and_identities_persist():
    a = draw_clip(np.random.default_rng(3), 160, 120, frames=12)
    b = draw_clip(np.random.default_rng(3), 160, 120, frames=12)
    assert all(np.array_equal(x.image, y.image) and np.array_equal(x.masks, y.masks) for x, y in zip(a.frames, b.frames))
    ids = a.identities
    for frame in a.frames:
        assert [o.identity for o in frame.objects] == ids
        assert [(o.shape, o.colour, o.size) for o in frame.objects] == [(o.shape, o.colour, o.size) for o in a.frames[0].objects]


def test_length_limits():
    assert 8 <= len(draw_clip(np.random.default_rng(0), 160, 120).frames) <= 64
    with pytest.raises(ValueError):
        draw_clip(np.random.default_rng(0), 160, 120, frames=4)


def test_objects_move_and_full_occlusion_is_short():
    moved, hidden_seen = 0, 0
    for seed in range(25):
        clip = draw_clip(np.random.default_rng(seed), 160, 120, frames=24)
        assert clip.longest_hidden() <= MAX_HIDDEN
        hidden_seen += clip.longest_hidden() > 0
        first, last = clip.frames[0].objects, clip.frames[-1].objects
        moved += sum(np.hypot(a.cx - b.cx, a.cy - b.cy) > 2 for a, b in zip(first, last))
        for f in clip.frames:
            assert f.masks.sum(0).max() <= 1
    assert moved > 10 and hidden_seen >= 1
