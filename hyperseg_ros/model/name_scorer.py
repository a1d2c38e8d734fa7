"""Name scorer: the open-vocabulary answer's score of each (query, category) pair. Not in the release.

The class head (output_heads.py) scores a category by its prompt embedding, which the LLM forms from the
whole list: on the embedded model it follows the category's place in the list more than its words, so it
says well *that* a query is one of the listed objects and badly *which* (label accuracy 0.63 on `val`).
The mask-shape encoder (mask_shape.py) says how well each category's own words fit the query's mask
(0.92 of true-mask windows named right), but nothing of whether the query is an object at all.

This small MLP reads both, per pair, as EVIDENCE and answers the logit that the query is an object the
category names. The category's own evidence is only its membership; the class head enters through the
query's best logit over the list (is it one of them?), so the label follows the words, never the place.
The mask's confidence and area say whether the mask is a whole object. It is fitted after everything
else, on the frozen model's evidence (training/train_name_scorer.py): its inputs are detached.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EVIDENCE = (
    "membership",  # log-sigmoid of the mask-shape membership of this category's words
    "margin",  # that, less the best other category's (the floor when there is none)
    "best other",  # the best other category's log-membership
    "class head",  # the class head's best logit over the list: is the query one of the listed objects
    "mask confidence",  # logit of the mask's mean probability inside it
    "mask area",  # log of the mask's share of the padded input
    "list length",  # log of the number of categories
    "piece share",  # the candidate's part of its query's mask: 1 for a whole mask, less for a piece (mask_pieces.py)
)
FLOOR = -20.0  # the log-membership of a category that is not there


def evidence(membership: torch.Tensor, class_logits: torch.Tensor, mask_logits: torch.Tensor,
             class_mask: torch.Tensor | None, share: torch.Tensor | None = None) -> torch.Tensor:
    """membership [B,Q,N] logits (mask_shape.membership), class_logits [B,Q,N] (padded categories -inf),
    mask_logits [B,Q,h,w], class_mask [B,N] bool (True = real; None = all real), share [B,Q] (None = all
    whole masks) -> [B,Q,N,len(EVIDENCE)]."""
    batch, queries, count = membership.shape
    real = torch.ones(batch, count, dtype=torch.bool, device=membership.device) if class_mask is None else class_mask
    member = F.logsigmoid(membership.float()).masked_fill(~real[:, None, :], FLOOR)
    # the best other category of each pair: the best, or the second best for the best one itself
    top2 = member.topk(min(2, count), dim=-1).values
    second = top2[..., 1:2] if count > 1 else torch.full_like(top2[..., :1], FLOOR)
    other = torch.where(member >= top2[..., :1], second, top2[..., :1])
    head = class_logits.float().masked_fill(~real[:, None, :], float("-inf")).amax(-1, keepdim=True)
    probability = mask_logits.float().sigmoid()
    inside = (mask_logits > 0).float()
    cells = inside.sum((-2, -1))
    confidence = ((probability * inside).sum((-2, -1)) / cells.clamp(min=1)).clamp(1e-4, 1 - 1e-4)
    area = (cells.clamp(min=1) / inside[0, 0].numel()).log()
    share = torch.ones_like(area) if share is None else share.float()
    per_query = torch.stack([head[..., 0], torch.logit(confidence), area], -1)[:, :, None, :].expand(-1, -1, count, -1)
    length = real.sum(-1).float().clamp(min=1).log()[:, None, None, None].expand(-1, queries, count, 1)
    pieces = share[:, :, None, None].expand(-1, -1, count, 1)
    return torch.cat([member[..., None], (member - other)[..., None], other[..., None], per_query, length, pieces], -1)


class NameScorer(nn.Module):
    """EVIDENCE [B,Q,N,E] -> [B,Q,N] logits. The evidence is standardised by `mean` / `std`, set when it is fitted."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.register_buffer("mean", torch.zeros(len(EVIDENCE)))
        self.register_buffer("std", torch.ones(len(EVIDENCE)))
        self.mlp = nn.Sequential(nn.Linear(len(EVIDENCE), hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, 1))

    def forward(self, evidence: torch.Tensor) -> torch.Tensor:
        x = (evidence - self.mean) / self.std
        return self.mlp(x.to(self.mlp[0].weight.dtype))[..., 0]
