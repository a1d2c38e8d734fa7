"""Visual prompts -> region masks on the SigLIP input -> region tokens."""
import numpy as np
import torch

from hyperseg_ros.model.region_prompt import region_masks, region_sample_points, region_tokens


def test_boxes_and_points_become_masks_on_the_square_input():
    # 200x100 image (W x H) on a 32x32 input: x scales by 0.16, y by 0.32
    masks = region_masks([(50, 25, 100, 50)], [(100, 50)], (100, 200), 32, point_radius=10)
    assert masks.shape == (2, 32, 32) and masks.dtype == bool
    ys, xs = np.nonzero(masks[0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (8, 23, 8, 23)
    ys, xs = np.nonzero(masks[1])  # a disc of 10 px -> ellipse with radii ~2 (x) and ~3 (y)
    assert masks[1, 16, 16] and 2 <= xs.max() - 16 <= 3 and 3 <= ys.max() - 16 <= 4
    # a point on the border still marks its pixel
    edge = region_masks([], [(199.9, 99.9)], (100, 200), 32, point_radius=0.1)
    assert edge[0].sum() >= 1


def test_region_token_is_the_mean_of_the_covered_cells():
    grid, width = 4, 3
    visual = torch.arange(grid * grid * width, dtype=torch.float32).view(grid * grid, width)
    mask = np.zeros((1, 16, 16), bool)
    mask[0, 0:8, 0:4] = True  # cells (row 0, col 0) and (row 1, col 0) of the 4x4 grid
    points = region_sample_points(mask, grid)
    assert points[0].shape == (2, 2)
    token = region_tokens(visual, points)
    torch.testing.assert_close(token[0], (visual[0] + visual[4]) / 2)
    # deterministic: the same prompt gives the same token
    assert torch.equal(region_tokens(visual, region_sample_points(mask, grid)), token)


def test_a_sliver_smaller_than_a_cell_still_has_a_token():
    mask = np.zeros((1, 64, 64), bool)
    mask[0, 40, 20] = True
    points = region_sample_points(mask, 8)
    assert len(points[0]) >= 1


def test_released_region_cells_follow_the_release_grid():
    """As released: prompts drawn at image resolution, PIL-resized; cell k = floor(p * g / s), sampled at
    k / g of the map; a prompt thinner than a SigLIP pixel still keeps one cell."""
    masks = region_masks([(0, 0, 64, 48), (100.2, 50.0, 0.5, 0.5)], [(639, 479)], (480, 640), 384, 10,
                         released=True)
    assert masks.shape == (3, 384, 384) and masks.reshape(3, -1).any(1).all()
    box, sliver, point = region_sample_points(masks, 27, released=True)
    # a box over the top-left tenth: rows/cols 0..38 of 384 -> cells 0..2, at -1 + 2k/27
    expected = sorted((-1 + 2 * x / 27, -1 + 2 * y / 27) for x in range(3) for y in range(3))
    np.testing.assert_allclose(sorted(map(tuple, box)), expected, atol=1e-6)
    assert len(sliver) == 1 and len(point) >= 1
    assert (point <= -1 + 2 * 26 / 27 + 1e-6).all()  # the last cell sits at 26/27 of the map, not its edge
