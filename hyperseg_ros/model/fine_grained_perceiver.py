"""Fine-grained visual perceiver (FVP) and the temporal adapter's latent recurrence.

Three Perceiver layers; layer i cross-attends to pyramid scale i only (res3, then res4, then
res5), keys/values = [scale tokens; latents]. Ungated, as the released weights are. The latents
of frame 0 are the learned `temporal_query`; the latents of frame t+1 are the LLM outputs at
frame t's fine-grained positions through `temporal_query_project`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import HyperSegConfig

FVP_LEVELS = ("res3", "res4", "res5")


class PerceiverAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """media: [B, N, P], latents: [B, L, P] -> attention update [B, L, P]."""
        media, latents = self.norm_media(media), self.norm_latents(latents)
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([media, latents], dim=1)).chunk(2, dim=-1)
        # [B, T, H*d] -> [B, H, T, d]
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).flatten(2))


class PerceiverResampler(nn.Module):
    """`layers[i] = [PerceiverAttention, FeedForward]`; FeedForward = LN, Linear, GELU, Linear (bias-free)."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, ff_mult: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PerceiverAttention(dim, heads, dim_head),
                nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * ff_mult, bias=False), nn.GELU(),
                              nn.Linear(dim * ff_mult, dim, bias=False)),
            ])
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, media: list[torch.Tensor], latents: torch.Tensor) -> torch.Tensor:
        """media: one [B, N_i, P] per layer; latents: [B, L, P] -> [B, L, P]."""
        for (attn, ff), scale_tokens in zip(self.layers, media):
            latents = latents + attn(scale_tokens, latents)
            latents = latents + ff(latents)
        return self.norm(latents)


class FineGrainedPerceiver(nn.Module):
    def __init__(self, config: HyperSegConfig):
        super().__init__()
        dim, width = config.perceiver_dim, config.llm_width
        channels = dict(zip(("res2", "res3", "res4", "res5"), config.pyramid_channels))
        self.local_project = nn.ModuleList(nn.Conv2d(channels[level], dim, 1) for level in FVP_LEVELS)
        self.level_embed = nn.Embedding(len(FVP_LEVELS), dim)
        self.mgvp_layers = PerceiverResampler(dim, len(FVP_LEVELS), config.perceiver_heads,
                                              config.perceiver_dim_head, config.perceiver_ff_mult)
        self.temporal_query = nn.Parameter(torch.randn(config.num_fine_grained_tokens, dim))
        self.expanded_seg_query_project = nn.Linear(dim, width)
        self.temporal_query_project = nn.Linear(width, dim)
        for conv in self.local_project:  # c2_xavier_fill, as detectron2 does for these convs
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)

    def initial_latents(self, batch_size: int) -> torch.Tensor:
        """The learned latents of a first frame or still image: [B, L, P]."""
        return self.temporal_query.unsqueeze(0).expand(batch_size, -1, -1)

    def forward(self, features: dict[str, torch.Tensor], latents: torch.Tensor | None = None) -> torch.Tensor:
        """features: res3..res5 [B, C_i, h_i, w_i]; latents: [B, L, P] (None = learned)
        -> fine-grained tokens [B, L, D_llm]."""
        batch = features["res3"].shape[0]
        media = [
            (proj(features[level]).flatten(2).transpose(1, 2) + self.level_embed.weight[i])
            for i, (level, proj) in enumerate(zip(FVP_LEVELS, self.local_project))
        ]
        latents = self.initial_latents(batch) if latents is None else latents.to(media[0].dtype)
        return self.expanded_seg_query_project(self.mgvp_layers(media, latents))

    def next_latents(self, fine_grained_hidden: torch.Tensor) -> torch.Tensor:
        """Temporal adapter: LLM outputs at the fine-grained positions [B, L, D_llm] -> next latents [B, L, P]."""
        return self.temporal_query_project(fine_grained_hidden)
