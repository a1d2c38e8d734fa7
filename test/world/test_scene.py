"""The still-image generator: reproducible, masks true to the attributes, occlusion rules."""
import numpy as np
import pytest

from hyperseg_ros.world.looks import named_colour
from hyperseg_ros.world.scene import RING_HOLE, SIZES, SceneObject, draw_scene, object_mask, random_image_size


def test_same_seed_same_scene_and_different_seed_differs():
    a = draw_scene(np.random.default_rng(7), 320, 240)
    b = draw_scene(np.random.default_rng(7), 320, 240)
    c = draw_scene(np.random.default_rng(8), 320, 240)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks) and a.objects == b.objects
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("size", [(160, 120), (320, 240), (640, 480), (1280, 720), (200, 700)])
def test_any_size_in_range(size):
    scene = draw_scene(np.random.default_rng(1), *size)
    assert scene.image.shape == (size[1], size[0], 3) and scene.image.dtype == np.uint8
    assert scene.masks.shape == (len(scene.objects), size[1], size[0])


def test_size_out_of_range_is_refused():
    with pytest.raises(ValueError):
        draw_scene(np.random.default_rng(0), 100, 80)


def test_masks_match_attributes_and_occlusion_rules():
    for seed in range(60):
        scene = draw_scene(np.random.default_rng(seed), 320, 240, degrade_image=False)
        assert 1 <= len(scene.objects) <= 6
        assert len({o.identity for o in scene.objects}) == len(scene.objects)
        assert scene.masks.sum(0).max() <= 1, "visible masks must not overlap"
        assert (scene.visible_fraction() >= 0.30 - 1e-9).all()
        for obj, mask in zip(scene.objects, scene.masks):
            assert mask.any()
            # flat paint is exactly the object's shade; every shade is within its named colour's range
            if obj.look.fill == "flat":
                assert (scene.image[mask] == obj.rgb).all()
            assert named_colour(obj.rgb) == obj.colour
            lo, hi = SIZES[obj.size]
            assert lo - 1e-9 <= obj.side / 240 <= hi + 1e-9


@pytest.mark.parametrize("shape,ratio", [("circle", np.pi / 4), ("square", 1.0), ("ring", np.pi / 4 * (1 - RING_HOLE**2)),
                                          ("cross", 5 / 9), ("triangle", np.sqrt(3) / 4), ("hexagon", 3 * np.sqrt(3) / 8)])
def test_shape_area_matches_geometry(shape, ratio):
    obj = SceneObject(1, shape, "red", "large", 160.0, 120.0, 100.0, 0.0)
    area = object_mask(obj, 240, 320).sum()
    assert area == pytest.approx(ratio * 100 * 100, rel=0.06)  # rasterised edges add about half a pixel


def test_ring_has_a_real_hole_and_circle_does_not():
    ring = object_mask(SceneObject(1, "ring", "red", "large", 100.0, 100.0, 80.0, 0.0), 200, 200)
    disc = object_mask(SceneObject(1, "circle", "red", "large", 100.0, 100.0, 80.0, 0.0), 200, 200)
    assert not ring[100, 100] and disc[100, 100] and ring[100, 100 + 30]
    assert (ring <= disc).all()


def test_rotation_changes_the_mask_but_not_its_area():
    a = object_mask(SceneObject(1, "star", "red", "large", 100.0, 100.0, 90.0, 0.0), 200, 200)
    b = object_mask(SceneObject(1, "star", "red", "large", 100.0, 100.0, 90.0, 36.0 / 2), 200, 200)
    assert not np.array_equal(a, b)
    assert a.sum() == pytest.approx(b.sum(), rel=0.02)


def test_background_is_never_a_saturated_object_colour():
    for seed in range(20):
        scene = draw_scene(np.random.default_rng(seed), 160, 120, degrade_image=False)
        bg = scene.image[~scene.masks.any(0)].astype(int)
        spread = bg.max(1) - bg.min(1)  # per-pixel channel spread: saturation proxy
        assert np.median(spread) <= 45


def test_random_image_sizes_cover_the_range_at_camera_aspects():
    rng = np.random.default_rng(0)
    sizes = np.array([random_image_size(rng) for _ in range(2000)])
    assert sizes[:, 0].min() >= 160 and sizes[:, 1].min() >= 120
    assert sizes[:, 0].max() <= 1280 and sizes[:, 1].max() <= 720
    assert sizes.min(1).max() >= 600 and sizes.min(1).min() <= 130  # small and large frames both occur
    assert (sizes[:, 1] > sizes[:, 0]).any() and (sizes[:, 0] > sizes[:, 1]).any()  # portrait and landscape
