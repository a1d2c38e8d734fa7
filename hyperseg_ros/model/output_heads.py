"""Output heads of HyperSeg's segmentation predictor (reference §3.4, §4.3).

Prompt scores are plain dot products (no normalisation, no temperature) between the normed decoder
queries, each through its own MLP2, and the prompt embeddings E_P: `SEG_proj` for the referring
sentence, `CLASS_proj` per category name, `REGION_proj` per visual-prompt region. The box head
(MLP3 -> 4, sigmoid cxcywh) runs on the same queries; the re-id head (MLP3) runs on the last layer's
queries before the LayerNorm (IDOL convention). Masks come from the decoder (see mask_decoder.py).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.models.mask2former.modeling_mask2former import Mask2FormerMLPPredictionHead


class OutputHeads(nn.Module):
    def __init__(self, hidden_dim: int = 256, reid_dim: int = 256):
        super().__init__()
        self.SEG_proj = Mask2FormerMLPPredictionHead(hidden_dim, hidden_dim, hidden_dim, num_layers=2)
        self.CLASS_proj = Mask2FormerMLPPredictionHead(hidden_dim, hidden_dim, hidden_dim, num_layers=2)
        self.REGION_proj = Mask2FormerMLPPredictionHead(hidden_dim, hidden_dim, hidden_dim, num_layers=2)
        self.box_embed = Mask2FormerMLPPredictionHead(hidden_dim, hidden_dim, 4, num_layers=3)
        self.reid_embed_head = Mask2FormerMLPPredictionHead(hidden_dim, hidden_dim, reid_dim, num_layers=3)

    def refer_logits(self, queries: torch.Tensor, refer_embedding: torch.Tensor) -> torch.Tensor:
        """queries [B,Q,D] (normed), refer_embedding E_P [B,1,D] -> [B,Q]."""
        return torch.einsum("bqd,bd->bq", self.SEG_proj(queries), refer_embedding[:, 0])

    def class_logits(
        self, queries: torch.Tensor, class_embeddings: torch.Tensor, class_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """queries [B,Q,D], class_embeddings [B,N,D], class_mask [B,N] bool (True = real category)
        -> [B,Q,N], padded categories at -inf."""
        logits = torch.einsum("bqd,bnd->bqn", self.CLASS_proj(queries), class_embeddings)
        if class_mask is not None:
            logits = logits.masked_fill(~class_mask[:, None, :], float("-inf"))
        return logits

    def region_logits(
        self, queries: torch.Tensor, region_embeddings: torch.Tensor, region_mask: torch.Tensor | None
    ) -> torch.Tensor:
        """queries [B,Q,D], region_embeddings [B,K,D], region_mask [B,K] bool (True = real region)
        -> [B,K,Q], padded regions at -inf."""
        logits = torch.einsum("bkd,bqd->bkq", region_embeddings, self.REGION_proj(queries))
        if region_mask is not None:
            logits = logits.masked_fill(~region_mask[:, :, None], float("-inf"))
        return logits

    def boxes(self, queries: torch.Tensor) -> torch.Tensor:
        """queries [B,Q,D] -> [B,Q,4] (cx, cy, w, h) in [0,1] of the padded input."""
        return self.box_embed(queries).sigmoid()

    def reid_embeddings(self, last_hidden_state: torch.Tensor) -> torch.Tensor:
        """last layer's queries [B,Q,D] (before the decoder LayerNorm) -> [B,Q,R]."""
        return self.reid_embed_head(last_hidden_state)
