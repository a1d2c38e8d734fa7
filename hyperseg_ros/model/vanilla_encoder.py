"""Vanilla encoder: SigLIP vision tower + `mm_projector` (mlp2x_gelu) to the LLM width."""
from __future__ import annotations

import torch
from torch import nn
from transformers import SiglipVisionModel

from .config import HyperSegConfig


class VanillaEncoder(nn.Module):
    """SigLIP patch features of layer `vision_feature_layer`, projected to the LLM width."""

    def __init__(self, config: HyperSegConfig):
        super().__init__()
        vision = config.vision()
        self.vision_tower = SiglipVisionModel(vision)
        self.mm_projector = nn.Sequential(
            nn.Linear(vision.hidden_size, config.llm_width), nn.GELU(), nn.Linear(config.llm_width, config.llm_width))
        num_layers = vision.num_hidden_layers
        # hidden_states[i] is the output of layer i (0 = embeddings): run only what is used.
        self.num_layers_used = config.vision_feature_layer % (num_layers + 1)
        self.grid = config.vision_grid

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values: [B, 3, s, s] in [-1, 1] -> visual tokens [B, g*g, D_llm] (row-major grid)."""
        tower = self.vision_tower
        hidden = tower.embeddings(pixel_values.to(tower.dtype))
        for layer in tower.encoder.layers[: self.num_layers_used]:
            hidden = layer(hidden, None)
        return self.mm_projector(hidden)
