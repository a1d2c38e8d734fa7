"""Training losses of HyperSeg on the world: Hungarian matching, mask BCE + dice, prompt scores,
box L1, deep supervision and the IDOL-style contrastive re-id loss.

Every task's prompt score is read as a [B, Q, N] logit (referring: N = 1; categories: N; regions:
the region logits transposed) and trained with sigmoid BCE, which is how inference scores it
(postprocess: sigmoid(task logit) x mask confidence). Queries left unmatched are "no object" for
every prompt, weighted by `no_object_weight` as Mask2Former's eos_coef; in an image where the
command matches nothing they get full weight, since saying "none" is then the whole task.

A prompt with exactly one answer (referring, reasoning, each region of a visual prompt) also gets
a ranking loss: cross-entropy over the queries, so the right object must outscore the distractors
that the other queries segment just as well (the sigmoid BCE alone pushes those down at 0.1).

A model with a mask-shape encoder adds its loss to every batch (weight `shape`): training/train_mask_shape.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from hyperseg_ros.command import REGION_TASKS, TEXT_TASKS
from hyperseg_ros.model.segmentation_predictor import PredictorOutput
from hyperseg_ros.training.dataset import Target


@dataclass
class LossWeights:
    """Release values (reference §8): class 2, mask BCE 5, dice 5, no-object 0.1; box and re-id ours."""

    score: float = 2.0
    mask: float = 5.0
    dice: float = 5.0
    box: float = 2.0
    no_object: float = 0.1
    reid: float = 1.0
    rank: float = 2.0
    shape: float = 1.0


SINGLE_ANSWER_TASKS = (*TEXT_TASKS, *REGION_TASKS)


def prompt_logits(pred: PredictorOutput, task: str) -> torch.Tensor:
    """The task's prompt logits as [B, Q, N] (-inf where a prompt is padding)."""
    if task in TEXT_TASKS:
        return pred.refer_logits.unsqueeze(-1)
    if task == "open_vocabulary":
        return pred.class_logits
    if task == "visual_prompt":
        return pred.region_logits.transpose(1, 2)
    raise ValueError(f"unknown task {task!r}")


Match = tuple[torch.Tensor, torch.Tensor]  # (query indices, target indices) of one image, on the CPU


@dataclass
class PaddedTargets:
    """A batch's targets stacked once per frame (every round reuses them): masks [B, M, P] (flattened
    stride-4 grid), labels [B, M], boxes [B, M, 4], zero-padded to the largest M; counts: real M per image."""

    masks: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor
    counts: list[int]

    @classmethod
    def of(cls, targets: list[Target]) -> PaddedTargets:
        counts = [int(t.labels.shape[0]) for t in targets]
        first = targets[0]
        m, p = max(counts), first.masks.shape[-2:].numel()
        masks = first.masks.new_zeros(len(targets), m, p)
        labels = first.labels.new_zeros(len(targets), m)
        boxes = first.boxes.new_zeros(len(targets), m, 4)
        for b, (t, n) in enumerate(zip(targets, counts)):
            masks[b, :n], labels[b, :n], boxes[b, :n] = t.masks.flatten(1).float(), t.labels, t.boxes
        return cls(masks, labels, boxes, counts)


@torch.no_grad()
def _costs(mask_logits: torch.Tensor, scores: torch.Tensor, padded: PaddedTargets, weights: LossWeights) -> torch.Tensor:
    """mask_logits [B, Q, h, w], scores [B, Q, N] -> matching cost [B, Q, M] (padded columns are garbage)."""
    flat, gt = mask_logits.flatten(2).float(), padded.masks
    pos = F.binary_cross_entropy_with_logits(flat, torch.ones_like(flat), reduction="none")
    neg = F.binary_cross_entropy_with_logits(flat, torch.zeros_like(flat), reduction="none")
    bce = (pos @ gt.transpose(1, 2) + neg @ (1 - gt).transpose(1, 2)) / flat.shape[-1]
    prob = flat.sigmoid()
    dice = 1 - (2 * (prob @ gt.transpose(1, 2)) + 1) / (prob.sum(-1)[..., None] + gt.sum(-1)[:, None] + 1)
    labels = padded.labels[:, None, :].expand(-1, scores.shape[1], -1)
    score = -torch.gather(scores.float().sigmoid(), 2, labels)
    return (weights.score * score + weights.mask * bce + weights.dice * dice).nan_to_num(1e4)


def match_rounds(rounds: list[PredictorOutput], task: str, padded: PaddedTargets, weights: LossWeights
                 ) -> list[list[Match]]:
    """Hungarian matching of every round and image: the costs of all of them cross to the CPU in one
    copy (one wait for the device per frame, not one per image and round)."""
    if not any(padded.counts):
        empty = torch.zeros(0, dtype=torch.long)
        return [[(empty, empty) for _ in padded.counts] for _ in rounds]
    costs = torch.stack([_costs(r.mask_logits, prompt_logits(r, task), padded, weights) for r in rounds]).cpu().numpy()
    matches = []
    for cost in costs:
        per_image = []
        for b, n in enumerate(padded.counts):
            rows, cols = linear_sum_assignment(cost[b, :, :n]) if n else ((), ())
            per_image.append((torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)))
        matches.append(per_image)
    return matches


def hungarian_match(mask_logits: torch.Tensor, scores: torch.Tensor, target: Target, weights: LossWeights) -> Match:
    """One image: mask_logits [Q, h, w], scores [Q, N] logits -> (query indices, target indices)."""
    pred = PredictorOutput(mask_logits[None], None, scores[None], None, None, None)
    return match_rounds([pred], "open_vocabulary", PaddedTargets.of([target]), weights)[0][0]


def _flat_indices(matches: list[Match], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per matched pair of the batch: (image, query, target) indices on `device`, in one copy."""
    image = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(matches)])
    query, target = torch.cat([q for q, _ in matches]), torch.cat([g for _, g in matches])
    return torch.stack([image, query, target]).to(device, non_blocking=True).unbind(0)


def round_loss(pred: PredictorOutput, task: str, padded: PaddedTargets, matches: list[Match],
               weights: LossWeights) -> dict[str, torch.Tensor]:
    """Losses of one prediction round over the batch (normalised by the number of instances), computed
    on all matched pairs at once."""
    logits = prompt_logits(pred, task)
    b, q, g = _flat_indices(matches, logits.device)
    labels = padded.labels[b, g]
    num = max(sum(padded.counts), 1)
    real = torch.isfinite(logits)
    goal = torch.zeros_like(logits)
    goal[b, q, labels] = 1.0
    # unmatched queries are "no object" at no_object weight; where the command matches nothing, full weight
    base = torch.tensor([weights.no_object if n else 1.0 for n in padded.counts], device=logits.device)
    w = base[:, None, None].expand_as(logits).clone()
    w[b, q] = 1.0  # matched queries: full weight for their right and wrong prompts
    bce = F.binary_cross_entropy_with_logits(logits.masked_fill(~real, 0.0), goal, reduction="none")
    losses = {"score": weights.score * (bce * w * real).sum() / num}
    ml, gt = pred.mask_logits[b, q].flatten(1), padded.masks[b, g]
    mask = F.binary_cross_entropy_with_logits(ml, gt, reduction="none").mean(1).sum()
    prob = ml.sigmoid()
    dice = (1 - (2 * (prob * gt).sum(1) + 1) / (prob.sum(1) + gt.sum(1) + 1)).sum()
    box = F.l1_loss(pred.boxes[b, q], padded.boxes[b, g], reduction="none").sum()
    losses.update(mask=weights.mask * mask / num, dice=weights.dice * dice / num, box=weights.box * box / num)
    if task in SINGLE_ANSWER_TASKS:  # [K, Q]: each answered prompt's logits over its image's queries
        rank = F.cross_entropy(logits[b, :, labels], q, reduction="sum") if len(q) else logits.new_zeros(())
        losses["rank"] = weights.rank * rank / num
    return losses


def segmentation_loss(pred: PredictorOutput, task: str, targets: list[Target], weights: LossWeights
                      ) -> tuple[dict[str, torch.Tensor], list[Match]]:
    """Last round plus deep supervision over `pred.aux` (each round matched on its own).
    -> (named losses summed over rounds, matches of the last round)."""
    rounds = [pred, *pred.aux]
    padded = PaddedTargets.of(targets)
    matched = match_rounds(rounds, task, padded, weights)
    total: dict[str, torch.Tensor] = {}
    for r, matches in zip(rounds, matched):
        for k, v in round_loss(r, task, padded, matches, weights).items():
            total[k] = total[k] + v if k in total else v
    return total, matched[0]


def reid_loss(embed_a: torch.Tensor, embed_b: torch.Tensor, targets_a: list[Target], targets_b: list[Target],
              matches_a: list[Match], matches_b: list[Match]) -> torch.Tensor:
    """IDOL-style contrastive re-id between two frames of the same clips.

    embed_a / embed_b: [B, Q, R] re-id embeddings of frame a and frame b. For an object matched in
    both frames, the query of frame a (anchor) must score its own query of frame b (positive) above
    every other query of frame b (negatives): log(1 + sum_neg exp(v.k_neg - v.k_pos)).
    """
    ids_a, ids_b = (torch.cat([t.identities for t in ts]).cpu().split([len(t.identities) for t in ts])
                    for ts in (targets_a, targets_b))
    pairs = []  # (image, anchor query of frame a, positive query of frame b)
    for b, ((qa, ga), (qb, gb)) in enumerate(zip(matches_a, matches_b)):
        query_b = dict(zip(ids_b[b][gb].tolist(), qb.tolist()))
        pairs += [(b, q, query_b[i]) for q, i in zip(qa.tolist(), ids_a[b][ga].tolist()) if i in query_b]
    if not pairs:
        return embed_a.sum() * 0.0
    image, anchor, positive = torch.tensor(pairs, device=embed_a.device).T
    sims = torch.einsum("kqr,kr->kq", embed_b[image], embed_a[image, anchor])  # [K, Q]
    # the positive's own term is exp(0) = 1: the "1 +" of the formula
    return torch.logsumexp(sims - sims.gather(1, positive[:, None]), dim=1).mean()
