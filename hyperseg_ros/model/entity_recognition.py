"""Hybrid entity recognition: mask-query embeddings E_Q and prompt embeddings E_P from the LLM.

E_Q = LLM outputs at the mask tokens through `seg_query_projector`. E_P = LLM outputs mean-pooled
over each prompt span (the sentence + [SEG]; each "name [SEG]"; each region token) through the
task's projector. Global prompt aggregation averages the pooled E_P over the frames of a stream.
With a mask-shape encoder (not in the release), each category also gets its own words' input
embeddings, mean-pooled over its span and projected: the name side of the shape-name score
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
            self.class_word_projector = nn.Linear(width, dim)
            # small and random, not zero: the shape vectors learn only from names that already differ
            nn.init.normal_(self.class_word_projector.weight, std=0.02)
            nn.init.zeros_(self.class_word_projector.bias)

    def name_embeddings(self, words: torch.Tensor, tokens: TokenBatch) -> torch.Tensor | None:
        """words: input embeddings [B, T, D_llm] -> [B, N, d] per category (None: not open vocabulary,
        or no mask-shape encoder)."""
        if self.class_word_projector is None or tokens.task != "open_vocabulary":
            return None
        return self.class_word_projector(self.pool_prompts(words, tokens))

    def query_embeddings(self, hidden: torch.Tensor, tokens: TokenBatch) -> torch.Tensor:
        """hidden: [B, T, D_llm] -> E_Q [B, Q, d]."""
        batch, _, width = hidden.shape
        return self.seg_query_projector(hidden[tokens.kind == MASK].view(batch, -1, width))

    @staticmethod
    def pool_prompts(hidden: torch.Tensor, tokens: TokenBatch) -> torch.Tensor:
        """Mean of hidden [B, T, D_llm] over each prompt span -> [B, N, D_llm] (zeros for absent prompts)."""
        prompts = torch.arange(tokens.num_prompts, device=hidden.device)
        member = (tokens.prompt_index.unsqueeze(-1) == prompts).to(hidden.dtype)  # [B, T, N]
        count = member.sum(dim=1).clamp(min=1).unsqueeze(-1)  # [B, N, 1]
        return member.transpose(1, 2) @ hidden / count

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
