"""mask_rle at its edges: empty and one-pixel masks, non-bool masks, the types returned, the messages."""
import numpy as np
import pytest

from hyperseg_ros import mask_rle

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def test_empty_and_one_pixel_masks():
    empty = mask_rle.encode(np.zeros((0, 5), bool))
    assert empty.dtype == np.uint32 and empty.shape == (0,)
    assert mask_rle.encode(np.ones((1, 1), bool)).tolist() == [0, 1]
    assert mask_rle.encode(np.zeros((1, 1), bool)).tolist() == [1]
    assert mask_rle.decode([0, 1], 1, 1).tolist() == [[True]]


def test_any_nonzero_value_is_set():
    mask = np.array([[0, 1, 2, 2, 0, 255]], np.uint8)
    counts = mask_rle.encode(mask)
    assert counts.dtype == np.uint32 and counts.tolist() == [1, 3, 1, 1]
    assert counts.tolist() == mask_rle.encode(mask.astype(bool)).tolist()


def test_decode_returns_bool_at_the_given_size():
    mask = np.zeros((3, 4), bool)
    mask[1, 2] = mask[2, 3] = True
    decoded = mask_rle.decode(mask_rle.encode(mask), 3, 4)
    assert decoded.dtype == bool and decoded.shape == (3, 4) and np.array_equal(decoded, mask)


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"mask must be 2-D, got shape \(2, 2, 2\)"):
        mask_rle.encode(np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError, match=r"RLE covers 5 pixels, image has 2x3=6"):
        mask_rle.decode([2, 3], 2, 3)
