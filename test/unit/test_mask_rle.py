"""mask_rle: the COCO uncompressed RLE of the contract, checked against pycocotools."""
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from hyperseg_ros import mask_rle

# pycocotools 2.0.11 (Cython) passes copy=False to numpy 2 when decoding
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _coco_counts(mask: np.ndarray) -> list[int]:
    """Uncompressed counts the reference way: pycocotools' compressed RLE, decoded run by run."""
    decoded = coco_mask.decode(coco_mask.encode(np.asfortranarray(mask.astype(np.uint8))))
    flat = decoded.ravel(order="F")
    counts, value, run = [], 0, 0
    for pixel in flat:
        if pixel == value:
            run += 1
        else:
            counts.append(run)
            value, run = pixel, 1
    counts.append(run)
    return counts


def _masks():
    rng = np.random.default_rng(1)
    yield np.zeros((5, 7), bool)
    yield np.ones((5, 7), bool)
    first = np.zeros((4, 4), bool)
    first[0, 0] = True  # first pixel set: counts start with a zero-length run
    yield first
    ring = np.zeros((40, 50), bool)
    yy, xx = np.mgrid[:40, :50]
    d = np.hypot(yy - 20, xx - 25)
    ring[(d < 15) & (d > 7)] = True  # a hole
    ring[2:5, 40:48] = True  # and a disjoint part
    yield ring
    yield rng.random((31, 17)) > 0.5


@pytest.mark.parametrize("mask", list(_masks()), ids=lambda m: f"{m.shape}-{int(m.sum())}")
def test_encode_matches_coco_and_decodes_back(mask):
    counts = mask_rle.encode(mask)
    assert counts.dtype == np.uint32 and int(counts.sum()) == mask.size
    assert counts.tolist() == _coco_counts(mask)
    np.testing.assert_array_equal(mask_rle.decode(counts, *mask.shape), mask)
    # exactly the decoding command the interface contract gives to clients
    h, w = mask.shape
    rle = coco_mask.frPyObjects({"size": [h, w], "counts": [int(c) for c in counts]}, h, w)
    np.testing.assert_array_equal(coco_mask.decode(rle).astype(bool), mask)


def test_first_pixel_set_starts_with_zero_run():
    mask = np.zeros((3, 3), bool)
    mask[0, 0] = mask[1, 0] = True
    assert mask_rle.encode(mask).tolist() == [0, 2, 7]


def test_decode_rejects_counts_of_the_wrong_total():
    with pytest.raises(ValueError):
        mask_rle.decode([3, 4], 3, 3)


def test_bbox_is_tight():
    mask = np.zeros((30, 40), bool)
    mask[5:9, 10:21] = True
    mask[20, 3] = True
    assert mask_rle.bbox(mask) == (3, 5, 18, 16)
    assert mask_rle.bbox(np.zeros((4, 4), bool)) == (0, 0, 0, 0)


def test_vga_mask_with_many_parts_round_trips():
    rng = np.random.default_rng(2)
    mask = np.zeros((480, 640), bool)
    for _ in range(20):  # blobby shapes, as masks are
        y, x, r = rng.integers(0, 480), rng.integers(0, 640), rng.integers(10, 80)
        yy, xx = np.ogrid[:480, :640]
        mask |= (yy - y) ** 2 + (xx - x) ** 2 < r * r
    counts = mask_rle.encode(mask)
    assert counts.tolist() == _coco_counts(mask)
    np.testing.assert_array_equal(mask_rle.decode(counts, 480, 640), mask)
