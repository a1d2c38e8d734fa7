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


def language_model_hidden_states(llm: PhiForCausalLM, inputs_embeds: torch.Tensor,
                                 attention_mask: torch.Tensor) -> torch.Tensor:
    """inputs_embeds: [B, T, D], attention_mask: [B, T] (1 = real, right padding) -> last hidden [B, T, D]."""
    return llm.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False).last_hidden_state
