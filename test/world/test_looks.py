"""Geometry variants and paint of the world's objects: a family, each member still named the same."""
import numpy as np
import pytest

from hyperseg_ros.world.looks import FILLS, HSV_RANGES, RING_HOLES, hsv_colour, named_colour, random_look
from hyperseg_ros.world.scene import COLOURS, SHAPES, SceneObject, object_mask, random_object


@pytest.mark.parametrize("colour", list(COLOURS))
def test_colour_shades_vary_and_stay_named(colour):
    rng = np.random.default_rng(0)
    shades = {hsv_colour(rng, colour) for _ in range(200)}
    assert len(shades) > 50
    assert all(named_colour(s) == colour for s in shades)


def test_named_colours_do_not_overlap():
    for a in HSV_RANGES:
        rng = np.random.default_rng(1)
        for _ in range(300):
            assert named_colour(hsv_colour(rng, a)) == a


def test_every_fill_and_geometry_variant_occurs():
    rng = np.random.default_rng(2)
    looks = [random_look(rng, shape, "red")[0] for shape in SHAPES for _ in range(60)]
    assert {lk.fill for lk in looks} == set(FILLS)
    holes = [random_look(rng, "ring", "blue")[0].hole for _ in range(200)]
    assert RING_HOLES[0] <= min(holes) < 0.4 and 0.65 < max(holes) <= RING_HOLES[1]


@pytest.mark.parametrize("shape", SHAPES)
def test_variants_of_a_shape_differ_but_keep_its_size_and_a_solid_body(shape):
    rng = np.random.default_rng(3)
    masks = []
    for _ in range(8):
        obj = random_object(rng, 1, 240, 320, shape=shape, size="large").moved(160.0, 120.0, 0.0)
        mask = object_mask(obj, 240, 320)
        ys, xs = np.nonzero(mask)
        # the unrotated bounding box's longer side is the object's side (ellipses: the major axis)
        assert max(np.ptp(xs), np.ptp(ys)) + 1 == pytest.approx(obj.side, abs=2.5)
        assert mask.sum() > 0.2 * obj.side**2  # thin shapes too keep a real area
        masks.append(mask)
    if shape != "circle":  # a circle may stay perfectly round; every other shape has free parameters
        assert len({m.tobytes() for m in masks}) > 1


def test_star_keeps_five_points():
    rng = np.random.default_rng(4)
    for _ in range(20):
        obj = random_object(rng, 1, 240, 320, shape="star", size="large").moved(160.0, 120.0, 0.0)
        radius = np.linalg.norm(obj.outline, axis=1)
        outer = radius > (radius.max() + radius.min()) / 2
        assert (outer & ~np.roll(outer, 1)).sum() == 5  # five runs of outline far from the centre


def test_default_look_is_the_canonical_drawing():
    a = object_mask(SceneObject(1, "star", "red", "large", 100.0, 100.0, 90.0, 0.0), 200, 200)
    b = object_mask(SceneObject(1, "star", "red", "large", 100.0, 100.0, 90.0, 0.0, (1, 2, 3)), 200, 200)
    assert np.array_equal(a, b) and a.any()
