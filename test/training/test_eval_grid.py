"""eval_grid.png names its columns: a header over (prediction | ground truth), then one row per example."""
import cv2
import numpy as np

from hyperseg_ros.training.evaluate import CAPTION_PX, picture_grid


def test_the_grid_has_a_header_naming_both_columns(tmp_path):
    image = np.full((60, 80, 3), 128, np.uint8)
    mask = np.zeros((60, 80), bool)
    mask[10:30, 20:50] = True
    picture_grid([("the red circle", image, mask, mask), ("star, ring", image, ~mask, mask)], tmp_path / "g.png")
    grid = cv2.imread(str(tmp_path / "g.png"))
    assert grid.shape == (CAPTION_PX + 2 * (CAPTION_PX + 240), 640, 3)
    header = grid[:CAPTION_PX]
    for column in (header[:, :320], header[:, 320:]):  # dark strip, light text in each half
        assert np.median(column) < 100 and (column > 200).any()
    assert np.median(grid[CAPTION_PX:2 * CAPTION_PX]) == 255  # the first example's caption follows
