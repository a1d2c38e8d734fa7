"""Pyramid encoder: a Swin backbone giving the four scales res2..res5 (strides 4, 8, 16, 32)."""
from __future__ import annotations

import torch
from torch import nn
from transformers import SwinBackbone

from .config import PYRAMID_LEVELS, HyperSegConfig


class PyramidEncoder(nn.Module):
    def __init__(self, config: HyperSegConfig):
        super().__init__()
        # Release name: the Swin is the "mask" vision tower.
        self.vision_tower_mask = SwinBackbone(config.pyramid())
        self.channels = config.pyramid_channels

    def forward(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """pixel_values: [B, 3, S, S] (ImageNet-normalised) -> {res2..res5: [B, C_i, S/4/2^i, S/4/2^i]}."""
        maps = self.vision_tower_mask(pixel_values.to(self.vision_tower_mask.dtype)).feature_maps
        return dict(zip(PYRAMID_LEVELS, maps))
