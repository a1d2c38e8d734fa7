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
