"""Hybrid entity recognition: mask-query embeddings E_Q and prompt embeddings E_P from the LLM.

E_Q = LLM outputs at the mask tokens through `seg_query_projector`. E_P = LLM outputs mean-pooled
over each prompt span (the sentence + [SEG]; each "name [SEG]"; each region token) through the
task's projector. Global prompt aggregation averages the pooled E_P over the frames of a stream.
With a mask-shape encoder (not in the release), each category also gets its own words' input
embeddings (its span without the [SEG]), mean-pooled and projected: the name side of the shape-name score
(mask_shape.py), which no other category's words or the image can blur.
"""
from __future__ import annotations

import torch
from torch import nn

from ..command import TEXT_TASKS
from .config import HyperSegConfig
from .multimodal_sequence import MASK, TokenBatch


class EntityRecognition(nn.Module):
    def __init__(self, config: HyperSegConfig):
        super().__init__()
        width, dim = config.llm_width, int(config.predictor_config["hidden_dim"])
        self.seg_query_projector = nn.Linear(width, dim)
        self.SEG_token_projector = nn.Linear(width, dim)
        self.class_name_projector = nn.Linear(width, dim)
        self.region_projector = nn.Linear(width, dim)
        self.class_word_projector = None
        if config.mask_shape_size:
            # no bias and no [SEG]: what every category shares would make all names point one way
            self.class_word_projector = nn.Linear(width, dim, bias=False)
            nn.init.normal_(self.class_word_projector.weight, std=0.02)

    def name_embeddings(self, words: torch.Tensor, tokens: TokenBatch) -> torch.Tensor | None:
        """words: input embeddings [B, T, D_llm] -> [B, N, d]: each category's own words (its span
        without the closing [SEG]), pooled and projected (None: not open vocabulary, or no mask-shape encoder)."""
        if self.class_word_projector is None or tokens.task != "open_vocabulary":
            return None
        index = tokens.prompt_index
        closing = index != torch.cat([index[:, 1:], torch.full_like(index[:, :1], -1)], dim=1)  # a span's [SEG]
        return self.class_word_projector(_pool(words, index.masked_fill(closing, -1), tokens.num_prompts))

    def query_embeddings(self, hidden: torch.Tensor, tokens: TokenBatch) -> torch.Tensor:
        """hidden: [B, T, D_llm] -> E_Q [B, Q, d]."""
        batch, _, width = hidden.shape
        return self.seg_query_projector(hidden[tokens.kind == MASK].view(batch, -1, width))

    @staticmethod
    def pool_prompts(hidden: torch.Tensor, tokens: TokenBatch) -> torch.Tensor:
        """Mean of hidden [B, T, D_llm] over each prompt span -> [B, N, D_llm] (zeros for absent prompts)."""
        return _pool(hidden, tokens.prompt_index, tokens.num_prompts)

    def prompt_embeddings(self, pooled: torch.Tensor, task: str) -> torch.Tensor:
        """pooled: [B, N, D_llm] -> E_P [B, N, d] through the projector of `task`."""
        if task in TEXT_TASKS:
            return self.SEG_token_projector(pooled)
        if task == "open_vocabulary":
            return self.class_name_projector(pooled)
        if task == "visual_prompt":
            return self.region_projector(pooled)
        raise ValueError(f"unknown task {task!r}")


def aggregate_prompts(pooled: torch.Tensor, history: tuple[torch.Tensor, int] | None) -> torch.Tensor:
    """Global prompt aggregation: mean of this frame's pooled prompts [B, N, D] and the sum of the
    `count` earlier frames' (history = (sum [B, N, D], count))."""
    if history is None or history[1] == 0:
        return pooled
    total, count = history
    return (total + pooled) / (count + 1)


def _pool(hidden: torch.Tensor, index: torch.Tensor, count: int) -> torch.Tensor:
    """Mean of hidden [B, T, D] over the positions of each index 0..count-1 ([B, T], -1 = none) -> [B, count, D]."""
    member = (index.unsqueeze(-1) == torch.arange(count, device=hidden.device)).to(hidden.dtype)  # [B, T, N]
    return member.transpose(1, 2) @ hidden / member.sum(dim=1).clamp(min=1).unsqueeze(-1)
