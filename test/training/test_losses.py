"""Losses: Hungarian matching finds the right queries, perfect predictions cost less, re-id contrast."""
import torch

from hyperseg_ros.model.segmentation_predictor import PredictorOutput
from hyperseg_ros.training.dataset import Target, boxes_of
from hyperseg_ros.training.losses import LossWeights, hungarian_match, reid_loss, segmentation_loss


def _masks():
    a = torch.zeros(16, 16)
    a[2:8, 2:8] = 1
    b = torch.zeros(16, 16)
    b[9:15, 4:12] = 1
    return torch.stack([a, b])


def _target(masks, labels, ids=(1, 2)):
    return Target(masks, torch.tensor(labels, dtype=torch.long), torch.tensor(ids[: len(labels)], dtype=torch.long),
                  boxes_of(masks))


def _prediction(mask_logits, class_logits):
    q = mask_logits.shape[1]
    return PredictorOutput(mask_logits, None, class_logits, None, torch.full((1, q, 4), 0.5), None)


def test_matching_recovers_the_planted_queries():
    gt = _masks()
    logits = torch.full((4, 16, 16), -8.0)
    logits[2] = gt[0] * 16 - 8  # query 2 predicts object 0, query 0 predicts object 1
    logits[0] = gt[1] * 16 - 8
    scores = torch.zeros(4, 3)
    q, g = hungarian_match(logits, scores, _target(gt, [1, 0]), LossWeights())
    assert dict(zip(g.tolist(), q.tolist())) == {0: 2, 1: 0}


def test_perfect_prediction_costs_less_than_a_wrong_one_and_no_match_pushes_scores_down():
    gt = _masks()
    target = _target(gt, [1, 0])
    good_masks = torch.full((1, 4, 16, 16), -8.0)
    good_masks[0, 2], good_masks[0, 0] = gt[0] * 16 - 8, gt[1] * 16 - 8
    good_cls = torch.full((1, 4, 2), -6.0)
    good_cls[0, 2, 1], good_cls[0, 0, 0] = 6.0, 6.0
    good, _ = segmentation_loss(_prediction(good_masks, good_cls), "open_vocabulary", [target], LossWeights())
    torch.manual_seed(0)
    bad, _ = segmentation_loss(_prediction(torch.randn(1, 4, 16, 16), torch.randn(1, 4, 2)), "open_vocabulary",
                               [target], LossWeights())
    for key in ("score", "mask", "dice"):
        assert good[key] < bad[key] * 0.5, key
    # nothing to find: the only loss is on the scores, and it falls as they drop
    empty = _target(torch.zeros(0, 16, 16), [])
    high, _ = segmentation_loss(_prediction(good_masks, torch.full((1, 4, 2), 3.0)), "open_vocabulary", [empty], LossWeights())
    low, _ = segmentation_loss(_prediction(good_masks, torch.full((1, 4, 2), -3.0)), "open_vocabulary", [empty], LossWeights())
    assert high["mask"] == 0 and low["score"] < high["score"]


def test_padded_categories_are_ignored():
    gt = _masks()[:1]
    cls = torch.zeros(1, 4, 3)
    cls[..., 2] = float("-inf")  # padding
    losses, _ = segmentation_loss(_prediction(torch.zeros(1, 4, 16, 16), cls), "open_vocabulary", [_target(gt, [0])],
                                  LossWeights())
    assert all(torch.isfinite(v) for v in losses.values())


def test_reid_loss_prefers_the_same_object_across_frames():
    targets = [_target(_masks(), [0, 0])]
    matches = [(torch.tensor([0, 1]), torch.tensor([0, 1]))]
    aligned = torch.eye(3)[None] * 5  # query i of frame a equals query i of frame b
    swapped = aligned[:, [1, 0, 2]]
    good = reid_loss(aligned, aligned, targets, targets, matches, matches)
    bad = reid_loss(aligned, swapped, targets, targets, matches, matches)
    assert good < 0.1 < bad


def test_ranking_loss_makes_the_described_object_outscore_an_equally_well_segmented_distractor():
    gt = _masks()
    target = _target(gt[:1], [0])  # "the one on top": object 0; object 1 is a distractor
    masks = torch.full((1, 4, 16, 16), -8.0)
    masks[0, 1], masks[0, 3] = gt[0] * 16 - 8, gt[1] * 16 - 8  # query 1 = target, query 3 = distractor

    def losses(target_logit, distractor_logit):
        refer = torch.full((1, 4), -4.0)
        refer[0, 1], refer[0, 3] = target_logit, distractor_logit
        pred = PredictorOutput(masks, refer, None, None, torch.full((1, 4, 4), 0.5), None)
        return segmentation_loss(pred, "referring", [target], LossWeights())[0]

    right, wrong = losses(4.0, 0.0), losses(0.0, 4.0)
    assert right["rank"] < 0.1 < wrong["rank"]
    assert "rank" not in segmentation_loss(_prediction(masks, torch.zeros(1, 4, 2)), "open_vocabulary",
                                           [_target(gt, [0, 1])], LossWeights())[0]


def test_a_command_matching_nothing_weighs_every_score_fully():
    empty = _target(torch.zeros(0, 16, 16), [])
    refer = torch.zeros(1, 4)
    pred = PredictorOutput(torch.zeros(1, 4, 16, 16), refer, None, None, torch.full((1, 4, 4), 0.5), None)
    losses, _ = segmentation_loss(pred, "referring", [empty], LossWeights())
    # 4 queries at logit 0: BCE log(2) each, weight 1 (not the 0.1 of unmatched queries), score weight 2
    assert torch.isclose(losses["score"], torch.tensor(2 * 4 * 0.6931), atol=1e-3)
    assert losses["rank"] == 0


def test_a_batch_costs_what_its_images_cost_alone():
    """Matching and losses run on the whole batch at once: no image's answer may leak into another's."""
    gt = _masks()
    torch.manual_seed(1)
    targets = [_target(gt, [1, 0]), _target(torch.zeros(0, 16, 16), []), _target(gt[1:], [1], ids=(7,))]
    masks, cls, boxes = torch.randn(3, 4, 16, 16), torch.randn(3, 4, 2), torch.rand(3, 4, 4)
    batch, batch_matches = segmentation_loss(PredictorOutput(masks, None, cls, None, boxes, None), "open_vocabulary",
                                             targets, LossWeights())
    counts = [max(len(t.labels), 1) for t in targets]
    alone = []
    for b, t in enumerate(targets):
        losses, matches = segmentation_loss(PredictorOutput(masks[b:b + 1], None, cls[b:b + 1], None, boxes[b:b + 1],
                                                            None), "open_vocabulary", [t], LossWeights())
        alone.append(losses)
        assert all(torch.equal(x, y) for x, y in zip(matches[0], batch_matches[b]))
    total = sum(len(t.labels) for t in targets)
    for key in batch:  # each image's loss is normalised by its own count alone, by the batch's count together
        assert torch.isclose(batch[key] * total, sum(a[key] * n for a, n in zip(alone, counts)), atol=1e-4), key
