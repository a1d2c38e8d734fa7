"""Masked-attention decoder of HyperSeg's segmentation predictor (reference §4.2).

transformers' `Mask2FormerMaskedAttentionDecoder` called directly: the initial query *features* are
E_Q from the LLM (not Mask2Former's learned `query_feat`), the query *positions* are the learned
`query_embed`. Each layer is cross-attention (masked by the previous prediction: sigmoid < 0.5
blocked, fully blocked rows unblocked) -> self-attention -> FFN, post-norm, round-robin over the
3 pixel-decoder levels. The decoder's `mask_predictor.mask_embedder` is the release's `mask_embed`
MLP3: masks are predicted inside the decoder because the next layer's attention mask needs them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.models.mask2former.modeling_mask2former import Mask2FormerMaskedAttentionDecoder

from .pixel_decoder import SinePositionEmbedding, mask2former_config


@dataclass
class MaskDecoderOutput:
    """queries: L+1 rounds (initial queries, then each layer), each [B,Q,D] after the decoder LayerNorm;
    mask_logits: L+1 rounds, each [B,Q,h,w] at the mask-feature resolution (stride 4);
    last_hidden_state: [B,Q,D] last layer's queries before the LayerNorm (re-id head input)."""

    queries: list[torch.Tensor]
    mask_logits: list[torch.Tensor]
    last_hidden_state: torch.Tensor


class MaskDecoder(nn.Module):
    """Mask2Former masked-attention decoder with external query features (E_Q)."""

    num_feature_levels = 3

    def __init__(
        self,
        *,
        hidden_dim: int = 256,
        num_queries: int = 100,
        num_layers: int = 9,
        ffn_dim: int = 2048,
        num_heads: int = 8,
    ):
        super().__init__()
        config = mask2former_config(
            hidden_dim=hidden_dim, num_heads=num_heads, decoder_layers=num_layers, decoder_ffn_dim=ffn_dim
        )
        self.position_embedding = SinePositionEmbedding(num_position_features=hidden_dim // 2, normalize=True)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)  # learned query positions
        self.level_embed = nn.Embedding(self.num_feature_levels, hidden_dim)
        # Input projections are identities in the release (pixel decoder width == decoder width).
        self.decoder = Mask2FormerMaskedAttentionDecoder(config)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Mask2Former's initialisation: xavier attention/FFN weights, N(0,1) embeddings,
        PyTorch defaults for the mask MLP."""
        for layer in self.decoder.layers:
            for p in layer.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
            nn.init.zeros_(layer.cross_attn.in_proj_bias)
        nn.init.normal_(self.query_embed.weight)
        nn.init.normal_(self.level_embed.weight)

    def forward(
        self,
        multi_scale_features: tuple[torch.Tensor, ...] | list[torch.Tensor],
        mask_features: torch.Tensor,
        query_features: torch.Tensor,
    ) -> MaskDecoderOutput:
        """multi_scale_features: 3 maps [B,D,h_l,w_l] (strides 32, 16, 8); mask_features [B,D,H/4,W/4];
        query_features E_Q [B,Q,D] with Q == num_queries."""
        batch, num_queries, _ = query_features.shape
        if num_queries != self.query_embed.num_embeddings:
            raise ValueError(f"E_Q has {num_queries} queries, the decoder has {self.query_embed.num_embeddings}")
        sources, positions, sizes = [], [], []
        for level, feature in enumerate(multi_scale_features):
            sizes.append(feature.shape[-2:])
            pos = self.position_embedding(feature.shape, feature.device, feature.dtype)
            positions.append(pos.flatten(2).permute(2, 0, 1))  # [HW,B,D]
            src = feature.flatten(2) + self.level_embed.weight[level][None, :, None]
            sources.append(src.permute(2, 0, 1))
        query_pos = self.query_embed.weight.unsqueeze(1).expand(-1, batch, -1)  # [Q,B,D]
        out = self.decoder(
            inputs_embeds=query_features.transpose(0, 1),
            multi_stage_positional_embeddings=positions,
            pixel_embeddings=mask_features,
            encoder_hidden_states=sources,
            query_position_embeddings=query_pos,
            feature_size_list=sizes,
            output_attentions=False,
            output_hidden_states=False,
            return_dict=True,
        )
        return MaskDecoderOutput(
            queries=[q.transpose(0, 1) for q in out.intermediate_hidden_states],
            mask_logits=list(out.masks_queries_logits),
            last_hidden_state=out.last_hidden_state,
        )
