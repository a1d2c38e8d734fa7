"""The LLM of the VLLM: Phi (transformers `PhiForCausalLM`), run as its causal base model.

Segmentation needs one forward pass over `inputs_embeds` and no generation; the LM head is kept
so that the released weights load and a text loss stays possible.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import PhiForCausalLM

from .config import HyperSegConfig


def build_language_model(config: HyperSegConfig) -> PhiForCausalLM:
    llm = PhiForCausalLM(config.llm())
    rows = config.embedding_rows
    if rows is not None and rows != llm.config.vocab_size:
        # The release resized only the input embedding after adding [SEG] (50296 rows vs 51200).
        llm.model.embed_tokens = nn.Embedding(rows, config.llm_width, padding_idx=llm.config.pad_token_id)
    return llm


def span_attention_mask(attention_mask: torch.Tensor, span: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Causal attention in which positions of two different spans do not see each other.

    attention_mask: [B, T] (1 = real); span: [B, T] span id (-1 = not in a span) -> additive mask
    [B, 1, T, T] (0 = attend, dtype's minimum = not), the 4-D form transformers passes through as is.
    """
    length = span.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=span.device).tril()
    other_span = (span[:, :, None] >= 0) & (span[:, None, :] >= 0) & (span[:, :, None] != span[:, None, :])
    allowed = causal & ~other_span & attention_mask.bool()[:, None, :]
    bias = torch.zeros(allowed.shape, dtype=dtype, device=span.device)
    return bias.masked_fill(~allowed, torch.finfo(dtype).min).unsqueeze(1)


def language_model_hidden_states(llm: PhiForCausalLM, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                                 position_ids: torch.Tensor | None = None,
                                 span: torch.Tensor | None = None) -> torch.Tensor:
    """inputs_embeds: [B, T, D], attention_mask: [B, T] (1 = real, right padding), position_ids
    [B, T] (None = 0..T-1), span [B, T] (parallel category spans, see span_attention_mask; None =
    plain causal) -> last hidden [B, T, D]."""
    if span is not None:
        attention_mask = span_attention_mask(attention_mask, span, inputs_embeds.dtype)
    return llm.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids,
                     use_cache=False).last_hidden_state
