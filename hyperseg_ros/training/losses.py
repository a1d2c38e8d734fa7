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


def _dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits [Q, P], targets [M, P] -> pairwise dice loss [Q, M]."""
    prob = logits.sigmoid()
    inter = prob @ targets.T
    return 1 - (2 * inter + 1) / (prob.sum(-1, keepdim=True) + targets.sum(-1)[None] + 1)


def _bce_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """logits [Q, P], targets [M, P] -> pairwise mean BCE [Q, M]."""
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[-1]


@torch.no_grad()
def hungarian_match(mask_logits: torch.Tensor, scores: torch.Tensor, target: Target,
                    weights: LossWeights) -> tuple[torch.Tensor, torch.Tensor]:
    """One image: mask_logits [Q, h, w], scores [Q, N] logits -> (query indices, target indices)."""
    if target.masks.shape[0] == 0:
        empty = torch.zeros(0, dtype=torch.long, device=mask_logits.device)
        return empty, empty
    flat, gt = mask_logits.flatten(1).float(), target.masks.flatten(1).float()
    score_cost = -scores.float().sigmoid()[:, target.labels]  # [Q, M]
    cost = weights.score * score_cost + weights.mask * _bce_cost(flat, gt) + weights.dice * _dice_cost(flat, gt)
    rows, cols = linear_sum_assignment(cost.nan_to_num(1e4).cpu().numpy())
    dev = mask_logits.device
    return torch.as_tensor(rows, dtype=torch.long, device=dev), torch.as_tensor(cols, dtype=torch.long, device=dev)


def round_loss(pred: PredictorOutput, task: str, targets: list[Target], weights: LossWeights,
               matches: list[tuple[torch.Tensor, torch.Tensor]] | None = None
               ) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    """Losses of one prediction round over the batch (normalised by the number of instances)."""
    logits = prompt_logits(pred, task)
    if matches is None:
        matches = [hungarian_match(pred.mask_logits[b], logits[b], t, weights) for b, t in enumerate(targets)]
    num = max(sum(len(t.labels) for t in targets), 1)
    score = mask = dice = box = rank = logits.new_zeros(())
    for b, (t, (q, g)) in enumerate(zip(targets, matches)):
        lg = logits[b]
        real = torch.isfinite(lg)
        goal = torch.zeros_like(lg)
        goal[q, t.labels[g]] = 1.0
        w = torch.full_like(lg, weights.no_object if len(t.labels) else 1.0)
        w[q] = 1.0  # matched queries: full weight for their right and wrong prompts
        bce = F.binary_cross_entropy_with_logits(lg.masked_fill(~real, 0.0), goal, reduction="none")
        score = score + (bce * w * real).sum()
        if len(q):
            ml = pred.mask_logits[b, q].flatten(1)
            gt = t.masks[g].flatten(1)
            mask = mask + F.binary_cross_entropy_with_logits(ml, gt, reduction="none").mean(1).sum()
            prob = ml.sigmoid()
            dice = dice + (1 - (2 * (prob * gt).sum(1) + 1) / (prob.sum(1) + gt.sum(1) + 1)).sum()
            box = box + F.l1_loss(pred.boxes[b, q], t.boxes[g], reduction="none").sum(1).sum()
            if task in SINGLE_ANSWER_TASKS:  # [M, Q] logits of each answered prompt over the queries
                rank = rank + F.cross_entropy(lg[:, t.labels[g]].T, q, reduction="sum")
    losses = {"score": weights.score * score / num, "mask": weights.mask * mask / num,
              "dice": weights.dice * dice / num, "box": weights.box * box / num}
    if task in SINGLE_ANSWER_TASKS:
        losses["rank"] = weights.rank * rank / num
    return losses, matches


def segmentation_loss(pred: PredictorOutput, task: str, targets: list[Target], weights: LossWeights
                      ) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    """Last round plus deep supervision over `pred.aux` (each round matched on its own).
    -> (named losses summed over rounds, matches of the last round)."""
    total, matches = round_loss(pred, task, targets, weights)
    for aux in pred.aux:
        extra, _ = round_loss(aux, task, targets, weights)
        total = {k: total[k] + extra[k] for k in total}
    return total, matches


def reid_loss(embed_a: torch.Tensor, embed_b: torch.Tensor, targets_a: list[Target], targets_b: list[Target],
              matches_a: list[tuple[torch.Tensor, torch.Tensor]], matches_b: list[tuple[torch.Tensor, torch.Tensor]]
              ) -> torch.Tensor:
    """IDOL-style contrastive re-id between two frames of the same clips.

    embed_a / embed_b: [B, Q, R] re-id embeddings of frame a and frame b. For an object matched in
    both frames, the query of frame a (anchor) must score its own query of frame b (positive) above
    every other query of frame b (negatives): log(1 + sum_neg exp(v.k_neg - v.k_pos)).
    """
    terms = []
    for b in range(embed_a.shape[0]):
        qa, ga = matches_a[b]
        qb, gb = matches_b[b]
        id_b = {int(targets_b[b].identities[g]): int(q) for q, g in zip(qb, gb)}
        for q, g in zip(qa, ga):
            pos = id_b.get(int(targets_a[b].identities[g]))
            if pos is None:
                continue
            sims = embed_b[b] @ embed_a[b, q]  # [Q]
            others = torch.cat([sims[:pos], sims[pos + 1:]]) - sims[pos]
            terms.append(torch.logsumexp(torch.cat([others.new_zeros(1), others]), 0))
    return torch.stack(terms).mean() if terms else embed_a.sum() * 0.0
