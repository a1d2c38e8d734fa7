"""Segmentation predictor: pixel decoder + masked-attention decoder + output heads (reference §4).

Reads the Swin pyramid res2..res5 and the LLM's E_Q (initial query features) and E_P (prompt
embeddings); predicts masks and prompt scores after every decoder round (deep supervision).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .mask_decoder import MaskDecoder
from .mask_pieces import add_pieces, whole_or_pieces
from .mask_shape import MaskShapeEncoder
from .name_scorer import NameScorer, evidence
from .output_heads import OutputHeads
from .pixel_decoder import Mask2FormerPixelDecoderOutput, PixelDecoder


@dataclass
class PredictorOutput:
    """One prediction round of the mask decoder (the last one, with the earlier rounds in ``aux``).

    mask_logits:     [B,Q,h,w] float, stride 4 of the padded pyramid input (logit > 0 = inside). The last
                     round of an open-vocabulary answer by a model with a name scorer also holds the
                     queries' mask pieces after the queries (mask_pieces.py), as do its other [B,Q,...] fields.
    refer_logits:    [B,Q] float or None (referring / reasoning: one prompt).
    class_logits:    [B,Q,N] float or None (category prompts; padded categories are -inf).
    region_logits:   [B,K,Q] float or None (visual prompts; padded regions are -inf).
    boxes:           [B,Q,4] float in [0,1], (cx, cy, w, h) relative to the padded input.
    reid_embeddings: [B,Q,R] float, instance embeddings for the tracker (None in ``aux`` rounds).
    name_logits:     [B,Q,N] float or None: the name scorer's open-vocabulary logits (name_scorer.py; last
                     round of a model that has one), which the answer reads instead of class_logits.
    aux:             earlier rounds (initial queries, then layers 1..L-1), oldest first.
    """

    mask_logits: torch.Tensor
    refer_logits: torch.Tensor | None
    class_logits: torch.Tensor | None
    region_logits: torch.Tensor | None
    boxes: torch.Tensor
    reid_embeddings: torch.Tensor | None
    name_logits: torch.Tensor | None = None
    aux: list[PredictorOutput] = field(default_factory=list)


class SegmentationPredictor(nn.Module):
    """Mask2Former-style head of HyperSeg (3b: 6 deformable encoder layers, 9 decoder layers, 256-d)."""

    def __init__(
        self,
        in_channels: list[int],
        *,
        hidden_dim: int = 256,
        num_queries: int = 100,
        encoder_layers: int = 6,
        encoder_ffn_dim: int = 1024,
        decoder_layers: int = 9,
        decoder_ffn_dim: int = 2048,
        num_heads: int = 8,
        num_points: int = 4,
        reid_dim: int = 256,
        mask_shape_size: int = 0,
        name_scorer_hidden: int = 0,
    ):
        super().__init__()
        self.pixel_decoder = PixelDecoder(
            in_channels,
            hidden_dim=hidden_dim,
            encoder_layers=encoder_layers,
            encoder_ffn_dim=encoder_ffn_dim,
            num_heads=num_heads,
            num_points=num_points,
        )
        self.mask_decoder = MaskDecoder(
            hidden_dim=hidden_dim,
            num_queries=num_queries,
            num_layers=decoder_layers,
            ffn_dim=decoder_ffn_dim,
            num_heads=num_heads,
        )
        self.heads = OutputHeads(hidden_dim, reid_dim)
        # this package's addition (mask_shape.py); 0 = the release, which has none
        self.mask_shape = MaskShapeEncoder(hidden_dim, mask_shape_size) if mask_shape_size else None
        self.name_scorer = NameScorer(name_scorer_hidden) if mask_shape_size and name_scorer_hidden else None

    def forward(
        self,
        features: dict[str, torch.Tensor],
        query_features: torch.Tensor,
        refer_embedding: torch.Tensor | None = None,
        class_embeddings: torch.Tensor | None = None,
        class_mask: torch.Tensor | None = None,
        region_embeddings: torch.Tensor | None = None,
        region_mask: torch.Tensor | None = None,
        pixels: torch.Tensor | None = None,
        name_embeddings: torch.Tensor | None = None,
        pixel_features: Mask2FormerPixelDecoderOutput | None = None,
    ) -> PredictorOutput:
        """features: res2..res5 [B,C_i,H_i,W_i] (strides 4..32); query_features E_Q [B,Q,D];
        refer_embedding E_P [B,1,D]; class_embeddings [B,N,D] with class_mask [B,N] bool
        (True = real category); region_embeddings [B,K,D] with region_mask [B,K] bool (True = real);
        pixels: the padded pyramid input [B,3,H,W] (read by the mask-shape encoder, where there is one);
        name_embeddings [B,N,d]: the categories' own words, scored against the mask-shape vectors;
        pixel_features: the pixel decoder's output for these features, when already computed (it
        reads the image only: several streams' frames can share one batched pass)."""
        if self.mask_shape is not None and pixels is None:
            raise ValueError("this model's mask-shape encoder reads the pyramid input: pass pixels")
        decoder_input = self.pixel_decoder(features) if pixel_features is None else pixel_features
        decoded = self.mask_decoder(decoder_input.multi_scale_features, decoder_input.mask_features, query_features)
        rounds = []
        for queries, mask_logits in zip(decoded.queries, decoded.mask_logits):
            boxes = self.heads.boxes(queries)
            class_logits = None if class_embeddings is None else self.heads.class_logits(queries, class_embeddings, class_mask)
            rounds.append(
                PredictorOutput(
                    mask_logits=mask_logits,
                    refer_logits=None if refer_embedding is None else self.heads.refer_logits(queries, refer_embedding),
                    class_logits=class_logits,
                    region_logits=None
                    if region_embeddings is None
                    else self.heads.region_logits(queries, region_embeddings, region_mask),
                    boxes=boxes,
                    reid_embeddings=None,
                )
            )
        final = rounds[-1]
        final.reid_embeddings = self.heads.reid_embeddings(decoded.last_hidden_state)
        if final.class_logits is not None and name_embeddings is not None and self.name_scorer is not None:
            final.name_logits = self._name_logits(final, pixels, name_embeddings, class_mask)
        final.aux = rounds[:-1]
        return final

    def _name_logits(self, final: PredictorOutput, pixels: torch.Tensor, names: torch.Tensor,
                     class_mask: torch.Tensor | None) -> torch.Tensor:
        """[B,Q,N] the name scorer's logits (name_scorer.py), padded categories -inf. At inference it first
        appends each query's mask pieces to `final` as candidates (mask_pieces.py: Q grows). Detached: the scorer is
        fitted on the frozen model (training/train_name_scorer.py), and the encoder learns from true masks
        only (training/train_mask_shape.py); a score loss would teach them whatever lifts scores."""
        with torch.no_grad():
            share, parents, queries = None, None, final.mask_logits.shape[1]
            if not self.training:  # each blob of a query's mask is a candidate too (mask_pieces.py)
                (final.mask_logits, final.class_logits, final.boxes, final.reid_embeddings, share,
                 parents) = add_pieces(final.mask_logits, final.class_logits, final.boxes, final.reid_embeddings)
            vectors = self.mask_shape(final.mask_logits, pixels, final.boxes)
            membership = self.mask_shape.membership(vectors, names.to(vectors.dtype))
            logits = self.name_scorer(evidence(membership, final.class_logits, final.mask_logits, class_mask, share))
            if class_mask is not None:
                logits = logits.masked_fill(~class_mask[:, None, :], float("-inf"))
            if parents is not None:
                logits = whole_or_pieces(logits, parents, final.mask_logits, queries)
            return logits.to(final.class_logits.dtype)
