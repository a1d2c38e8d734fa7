"""MSDeformAttn pixel decoder of HyperSeg's segmentation predictor (reference §4.1).

Built on transformers' Mask2Former parts (pure-PyTorch multi-scale deformable attention, no CUDA
build). It differs from transformers' `Mask2FormerPixelDecoder` where the HyperSeg release does:
the FPN lateral 1x1 conv has a bias and is followed by GroupNorm + ReLU, the 3x3 output conv has a
bias. The FPN is written here (one level: stride 8 -> 4, as with Swin's res2..res5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import (
    Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention,
    Mask2FormerPixelDecoderEncoderOnly,
    Mask2FormerPixelDecoderOutput,
    Mask2FormerSinePositionEmbedding,
)

FEATURE_NAMES = ("res2", "res3", "res4", "res5")


MAX_CACHED_SIZES = 16  # constant tensors kept per module (one per input size, dtype and device)


def _constant(cache: dict, key, build):
    """cache[key], built once by `build()` outside inference mode and autograd, so the same tensor
    serves inference and training. A size-dependent constant, never a weight."""
    if key not in cache:
        if len(cache) >= MAX_CACHED_SIZES:
            cache.clear()
        with torch.inference_mode(False), torch.no_grad():
            cache[key] = build()
    return cache[key]


class SinePositionEmbedding(Mask2FormerSinePositionEmbedding):
    """Normalised sine embedding computed in float32 and cast (as the release does), so that
    bf16/fp16 inference gets the same positions as fp32. Output [B,2*num_position_features,H,W].
    Without a mask it depends only on the shape: built once per shape, dtype and device."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cache: dict = {}

    def forward(self, shape, device, dtype, mask=None):
        if mask is not None:
            return super().forward(shape, device, torch.float32, mask).to(dtype)
        return _constant(self._cache, (tuple(shape), str(device), dtype),
                         lambda: super(SinePositionEmbedding, self).forward(shape, device, torch.float32).to(dtype))


class DeformableEncoder(Mask2FormerPixelDecoderEncoderOnly):
    """transformers' multi-scale deformable encoder with its reference points built once per
    feature size: they depend only on the sizes, since the valid ratios here are always 1 (no
    padding mask, as released)."""

    def __init__(self, config):
        super().__init__(config)
        self._cache: dict = {}

    def get_reference_points(self, spatial_shapes_list, valid_ratios, device):
        key = (tuple(tuple(int(v) for v in s) for s in spatial_shapes_list), tuple(valid_ratios.shape),
               valid_ratios.dtype, str(device))
        ones = lambda: torch.ones(valid_ratios.shape, dtype=valid_ratios.dtype, device=device)  # noqa: E731
        return _constant(self._cache, key, lambda: Mask2FormerPixelDecoderEncoderOnly.get_reference_points(
            spatial_shapes_list, ones(), device))


class DeformableAttention(Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention):
    """transformers' multi-scale deformable attention, same weights and numbers (within float
    rounding), with each level's samples weighted and summed as they are drawn, over rows of
    queries: transformers stacks every level's samples into one tensor and sums over its last
    dimension (4 points), 2.2x the time of this on a CPU at the shipped model's size."""

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                position_embeddings=None, reference_points=None, spatial_shapes_list=None, level_start_index=None,
                output_attentions=False):
        if reference_points.shape[-1] != 2:  # the encoder's points; boxes are a decoder's
            raise ValueError(f"reference points must be (x, y), got {reference_points.shape[-1]} values")
        queries = self.with_pos_embed(hidden_states, position_embeddings)
        batch, length, _ = queries.shape
        heads, levels, points = self.n_heads, self.n_levels, self.n_points
        value = self.value_proj(encoder_hidden_states)
        if attention_mask is not None:
            value = value.masked_fill(attention_mask[..., None], 0.0)
        offsets = self.sampling_offsets(queries).view(batch, length, heads, levels, points, 2)
        weights = self.attention_weights(queries).view(batch, length, heads, levels * points).softmax(-1)
        weights = weights.view(batch, length, heads, levels, points)
        size_xy = queries.new_tensor([[w, h] for h, w in spatial_shapes_list])
        # sampling points in [-1, 1], laid out [B*heads, levels, points, Q, 2]: grid_sample then draws
        # [B*heads, head_dim, points, Q], and the weighted sum over points runs over whole rows of Q
        grids = (2 * reference_points - 1)[:, :, None, :, None, :] + offsets * (2 / size_xy)[:, None, :]
        grids = grids.permute(0, 2, 3, 4, 1, 5).flatten(0, 1)
        per_head = weights.permute(0, 2, 3, 4, 1).flatten(0, 1)  # [B*heads, levels, points, Q]
        out = None
        sizes = [h * w for h, w in spatial_shapes_list]
        for level, (v, (h, w)) in enumerate(zip(value.split(sizes, 1), spatial_shapes_list)):
            v = v.transpose(1, 2).reshape(batch * heads, -1, h, w)
            drawn = F.grid_sample(v, grids[:, level], mode="bilinear", padding_mode="zeros", align_corners=False)
            part = (drawn * per_head[:, None, level]).sum(2)  # [B*heads, head_dim, Q]
            out = part if out is None else out + part
        return self.output_proj(out.view(batch, -1, length).transpose(1, 2)), weights


def mask2former_config(
    *,
    hidden_dim: int,
    num_heads: int,
    encoder_layers: int = 6,
    encoder_ffn_dim: int = 1024,
    decoder_layers: int = 9,
    decoder_ffn_dim: int = 2048,
) -> Mask2FormerConfig:
    """The transformers config that the Mask2Former parts read (decoder_layers counts our layers;
    transformers counts one more, the prediction on the initial queries)."""
    return Mask2FormerConfig(
        feature_size=hidden_dim,
        mask_feature_size=hidden_dim,
        hidden_dim=hidden_dim,
        encoder_layers=encoder_layers,
        encoder_feedforward_dim=encoder_ffn_dim,
        decoder_layers=decoder_layers + 1,
        dim_feedforward=decoder_ffn_dim,
        num_attention_heads=num_heads,
        dropout=0.0,
        pre_norm=False,
        common_stride=4,
        feature_strides=(4, 8, 16, 32),
    )


class PixelDecoder(nn.Module):
    """res2..res5 -> mask features (stride 4) + 3 multi-scale features (strides 32, 16, 8).

    The deformable encoder (transformers' `Mask2FormerPixelDecoderEncoderOnly`) runs on res3..res5
    after a 1x1 conv + GroupNorm input projection; one FPN level brings its stride-8 output down to
    stride 4 with res2. GroupNorm has 32 groups as released (fewer when hidden_dim < 32, tiny sizes).
    Module names follow transformers' `Mask2FormerPixelDecoder`.
    """

    num_feature_levels = 3

    def __init__(
        self,
        in_channels: list[int],
        *,
        hidden_dim: int = 256,
        encoder_layers: int = 6,
        encoder_ffn_dim: int = 1024,
        num_heads: int = 8,
        num_points: int = 4,
    ):
        super().__init__()
        if len(in_channels) != len(FEATURE_NAMES):
            raise ValueError(f"in_channels must list res2..res5 channels, got {in_channels}")
        groups = math.gcd(32, hidden_dim)
        config = mask2former_config(
            hidden_dim=hidden_dim, num_heads=num_heads, encoder_layers=encoder_layers, encoder_ffn_dim=encoder_ffn_dim
        )
        self.position_embedding = SinePositionEmbedding(num_position_features=hidden_dim // 2, normalize=True)
        self.level_embed = nn.Parameter(torch.empty(self.num_feature_levels, hidden_dim))
        # Coarse to fine: res5, res4, res3.
        self.input_projections = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, hidden_dim, 1), nn.GroupNorm(groups, hidden_dim))
            for channels in in_channels[:0:-1]
        )
        self.encoder = DeformableEncoder(config)
        for layer in self.encoder.layers:  # transformers' own has 4 sampling points per level
            layer.self_attn = DeformableAttention(
                embed_dim=hidden_dim, num_heads=num_heads, n_levels=self.num_feature_levels, n_points=num_points
            )
        self.mask_projection = nn.Conv2d(hidden_dim, hidden_dim, 1)
        # Release FPN on res2: lateral 1x1 conv with bias + GN + ReLU, output 3x3 conv with bias + GN + ReLU.
        self.adapter_1 = nn.Sequential(
            nn.Conv2d(in_channels[0], hidden_dim, 1), nn.GroupNorm(groups, hidden_dim), nn.ReLU()
        )
        self.layer_1 = nn.Sequential(
            nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1), nn.GroupNorm(groups, hidden_dim), nn.ReLU()
        )
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Mask2Former's initialisation."""
        for proj in self.input_projections:
            nn.init.xavier_uniform_(proj[0].weight)
            nn.init.zeros_(proj[0].bias)
        for p in self.encoder.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        for layer in self.encoder.layers:
            _reset_deformable_attention(layer.self_attn)
        nn.init.normal_(self.level_embed)
        for conv in (self.mask_projection, self.adapter_1[0], self.layer_1[0]):
            nn.init.kaiming_uniform_(conv.weight, a=1)  # detectron2 c2_xavier_fill
            nn.init.zeros_(conv.bias)

    def forward(self, features: dict[str, torch.Tensor]) -> Mask2FormerPixelDecoderOutput:
        """features: res2..res5 [B,C_i,H_i,W_i] at strides 4, 8, 16, 32.

        Returns `.mask_features` [B,D,H/4,W/4] and `.multi_scale_features`, a tuple of 3 maps
        [B,D,h,w] at strides 32, 16, 8 (coarse to fine, the decoder's round-robin order).
        """
        levels = [features[name] for name in FEATURE_NAMES[:0:-1]]  # res5, res4, res3
        sources, positions, shapes = [], [], []
        for level, (x, proj) in enumerate(zip(levels, self.input_projections)):
            src = proj(x)
            shapes.append((src.shape[2], src.shape[3]))
            sources.append(src.flatten(2).transpose(1, 2))
            pos = self.position_embedding(src.shape, src.device, src.dtype).flatten(2).transpose(1, 2)
            positions.append(pos + self.level_embed[level].view(1, 1, -1))
        batch = sources[0].shape[0]
        flat = torch.cat(sources, 1)
        spatial = torch.as_tensor(shapes, dtype=torch.long, device=flat.device)
        level_start = torch.cat((spatial.new_zeros((1,)), spatial.prod(1).cumsum(0)[:-1]))
        # No padding mask: the release attends over the padded square too.
        valid_ratios = torch.ones(batch, self.num_feature_levels, 2, dtype=flat.dtype, device=flat.device)
        encoded = self.encoder(
            inputs_embeds=flat,
            attention_mask=torch.zeros(flat.shape[:2], dtype=torch.bool, device=flat.device),
            position_embeddings=torch.cat(positions, 1),
            spatial_shapes_list=shapes,
            level_start_index=level_start,
            valid_ratios=valid_ratios,
            output_attentions=False,
            output_hidden_states=False,
            return_dict=True,
        ).last_hidden_state
        outputs = [
            y.transpose(1, 2).reshape(batch, -1, h, w)
            for y, (h, w) in zip(encoded.split([h * w for h, w in shapes], 1), shapes)
        ]
        res2 = self.adapter_1(features["res2"])
        fine = res2 + F.interpolate(outputs[-1], size=res2.shape[-2:], mode="bilinear", align_corners=False)
        return Mask2FormerPixelDecoderOutput(
            mask_features=self.mask_projection(self.layer_1(fine)), multi_scale_features=tuple(outputs)
        )


def _reset_deformable_attention(attn: Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention) -> None:
    """Deformable DETR init: offsets start on a ring of directions, one radius per point."""
    nn.init.zeros_(attn.sampling_offsets.weight)
    thetas = torch.arange(attn.n_heads, dtype=torch.float32) * (2.0 * math.pi / attn.n_heads)
    grid = torch.stack([thetas.cos(), thetas.sin()], -1)
    grid = grid / grid.abs().max(-1, keepdim=True)[0]
    grid = grid.view(attn.n_heads, 1, 1, 2).repeat(1, attn.n_levels, attn.n_points, 1)
    grid = grid * torch.arange(1, attn.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
    attn.sampling_offsets.bias.copy_(grid.flatten())
    nn.init.zeros_(attn.attention_weights.weight)
    nn.init.zeros_(attn.attention_weights.bias)
    nn.init.xavier_uniform_(attn.value_proj.weight)
    nn.init.zeros_(attn.value_proj.bias)
    nn.init.xavier_uniform_(attn.output_proj.weight)
    nn.init.zeros_(attn.output_proj.bias)
