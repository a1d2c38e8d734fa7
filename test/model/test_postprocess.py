"""Post-processing: masks back at input resolution, padding cropped, release score rule, boxes."""
import numpy as np
import torch
import torch.nn.functional as F

from hyperseg_ros.model.postprocess import mask_boxes, mask_scores, postprocess, upsample_masks

# A 96x128 (HxW) image resized by 0.5 to 48x64 and padded to a 64x64 square: logits are 16x16.
PADDED, VALID, IMAGE = (64, 64), (48, 64), (96, 128)


def square_logits() -> torch.Tensor:
    """Query 0: a square on logit cells rows 2..5, cols 3..7 (image rows 16..47, cols 24..63).
    Query 1: a blob only in the padding (logit rows 12..15). Query 2: everything inside."""
    logits = torch.full((3, 16, 16), -8.0)
    logits[0, 2:6, 3:8] = 8.0
    logits[1, 12:16, :] = 8.0
    logits[2] = 2.0
    return logits


def test_known_square_comes_back_at_the_right_place():
    masks = upsample_masks(square_logits(), padded_size=PADDED, valid_size=VALID, image_size=IMAGE) > 0
    assert masks.shape == (3, 96, 128)
    expected = torch.zeros(96, 128, dtype=torch.bool)
    expected[16:48, 24:64] = True
    iou = (masks[0] & expected).sum() / (masks[0] | expected).sum()
    assert iou > 0.9
    x, y, w, h = mask_boxes(masks[:1])[0].tolist()
    assert abs(x - 24) <= 2 and abs(y - 16) <= 2 and abs(w - 40) <= 3 and abs(h - 32) <= 3
    assert not masks[1].any()  # the padding was cropped
    assert masks[2].all()


def test_matches_upsample_crop_resize_of_the_release():
    g = torch.Generator().manual_seed(0)
    logits = F.interpolate(torch.randn(4, 1, 8, 8, generator=g), size=(64, 64), mode="bilinear")[:, 0] * 6
    ours = upsample_masks(logits, padded_size=(256, 256), valid_size=(192, 256), image_size=(480, 640))
    full = F.interpolate(logits[None], size=(256, 256), mode="bilinear", align_corners=False)[..., :192, :256]
    release = F.interpolate(full, size=(480, 640), mode="bilinear", align_corners=False)[0]
    assert ((ours > 0) != (release > 0)).float().mean() < 1e-3
    # One bilinear step instead of two: equal up to interpolation rounding (largest at the borders,
    # where the release clamps twice).
    assert (ours - release).abs().mean() < 0.01 and (ours - release).abs().max() < 0.25


def test_score_is_task_probability_times_mean_probability_inside():
    logits = torch.full((1, 16, 16), -3.0)
    logits[0, :6, :6] = 2.0
    score = mask_scores(torch.tensor([1.5]), logits)
    expected = torch.sigmoid(torch.tensor(1.5)) * torch.sigmoid(torch.tensor(2.0))
    torch.testing.assert_close(score, expected[None])


def test_postprocess_keeps_scored_instances_best_first():
    logits = square_logits()
    task = torch.tensor([4.0, 6.0, 1.0])  # query 1 is confident but only in the padding
    det = postprocess(task, logits, padded_size=PADDED, valid_size=VALID, image_size=IMAGE, score_threshold=0.5)
    assert det.indices.tolist() == [0, 2]
    assert det.masks.shape == (2, 96, 128) and det.masks.dtype == torch.bool
    s0 = torch.sigmoid(torch.tensor(4.0)) * torch.sigmoid(torch.tensor(8.0))
    assert abs(det.scores[0].item() - s0.item()) < 0.02
    assert det.scores[0] > det.scores[1]
    assert det.boxes[1].tolist() == [0, 0, 128, 96]

    strict = postprocess(task, logits, padded_size=PADDED, valid_size=VALID, image_size=IMAGE, score_threshold=0.7)
    assert strict.indices.tolist() == [0]
    capped = postprocess(task, logits, padded_size=PADDED, valid_size=VALID, image_size=IMAGE, max_instances=1)
    assert capped.indices.tolist() == [0]
    none = postprocess(torch.full((3,), -5.0), logits, padded_size=PADDED, valid_size=VALID, image_size=IMAGE)
    assert none.masks.shape == (0, 96, 128) and none.boxes.shape == (0, 4)


def test_boxes_are_tight_and_empty_masks_give_zeros():
    rng = np.random.default_rng(0)
    masks = torch.zeros(3, 20, 30, dtype=torch.bool)
    masks[0, 3:9, 5:6] = True
    masks[1, rng.integers(0, 20, 10), rng.integers(0, 30, 10)] = True
    boxes = mask_boxes(masks).tolist()
    assert boxes[0] == [5, 3, 1, 6]
    ys, xs = np.nonzero(masks[1].numpy())
    assert boxes[1] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    assert boxes[2] == [0, 0, 0, 0]


def test_no_candidate_gives_empty_detections():
    """A frame where nothing passes the threshold is a valid answer, not an error."""
    detections = postprocess(
        torch.full((4,), -10.0), torch.randn(4, 16, 16),
        padded_size=(64, 64), valid_size=(48, 64), image_size=(120, 160), score_threshold=0.5,
    )
    assert detections.masks.shape == (0, 120, 160)
    assert len(detections.scores) == 0 and len(detections.boxes) == 0
