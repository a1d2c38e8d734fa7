"""HyperSeg: one forward pass per image or frame, wiring the boxes of the paper's figure.

The pass splits in three (`encode_pyramid`, `language`, `segment`) so that a stream can run the
language side at a lower rate than the camera (session.py); `forward` chains them.

pyramid image -> PyramidEncoder (Swin) -> res2..res5 --------------------------------+
              -> FineGrainedPerceiver (latents of the previous frame) -> fine tokens  |
SigLIP image  -> VanillaEncoder -> visual tokens (-> region tokens for visual prompts) |
tokens + slots -> splice_embeddings -> Phi (causal) -> EntityRecognition (E_Q, E_P) --+-> SegmentationPredictor
                                                   -> temporal_query_project -> latents of the next frame
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel

from ..command import TEXT_TASKS
from .config import HyperSegConfig
from .entity_recognition import EntityRecognition, aggregate_prompts
from .fine_grained_perceiver import FineGrainedPerceiver
from .multimodal_sequence import FINE_GRAINED, TokenBatch, splice_embeddings
from .pyramid_encoder import PyramidEncoder
from .region_prompt import region_tokens as sample_region_tokens
from .segmentation_predictor import PredictorOutput, SegmentationPredictor
from .vanilla_encoder import VanillaEncoder
from .vllm import build_language_model, language_model_hidden_states


@dataclass
class HyperSegOutput:
    """predictions: the predictor's last round (mask_logits [B,Q,S/4,S/4], refer/class/region
        logits, boxes, reid_embeddings) with the earlier rounds in `predictions.aux`.
    temporal_latents: [B, L, P] FVP latents for the next frame of each stream.
    query_embeddings: E_Q [B, Q, d]. prompt_embeddings: E_P [B, N, d] (after aggregation).
    prompt_mask: [B, N] bool, which prompts exist.
    pooled_prompts: [B, N, D_llm] this frame's pooled prompt spans (feeds global aggregation).
    region_tokens: [B, K, D_llm] region tokens used (None without visual prompts).
    """

    predictions: PredictorOutput
    temporal_latents: torch.Tensor
    query_embeddings: torch.Tensor
    prompt_embeddings: torch.Tensor
    prompt_mask: torch.Tensor
    pooled_prompts: torch.Tensor
    region_tokens: torch.Tensor | None


@dataclass
class LanguageOutput:
    """What the language side hands the segmentation side; a stream may reuse it for later frames.

    task: the tokens' task. query_embeddings: E_Q [B, Q, d]. prompt_embeddings: E_P [B, N, d]
    (after aggregation). prompt_mask: [B, N] bool. temporal_latents: [B, L, P] FVP latents for the
    next language pass. pooled_prompts: [B, N, D_llm]. region_tokens: [B, K, D_llm] or None.
    name_embeddings: [B, N, d] each category's own words (open vocabulary with a mask-shape encoder), or None.
    """

    task: str
    query_embeddings: torch.Tensor
    prompt_embeddings: torch.Tensor
    prompt_mask: torch.Tensor
    temporal_latents: torch.Tensor
    pooled_prompts: torch.Tensor
    region_tokens: torch.Tensor | None
    name_embeddings: torch.Tensor | None = None


class HyperSeg(PreTrainedModel):
    config: HyperSegConfig
    config_class = HyperSegConfig
    base_model_prefix = "hyperseg"
    main_input_name = "pyramid_pixels"
    _supports_sdpa = True

    def __init__(self, config: HyperSegConfig):
        super().__init__(config)
        self.vanilla_encoder = VanillaEncoder(config)
        self.pyramid_encoder = PyramidEncoder(config)
        self.fine_grained_perceiver = FineGrainedPerceiver(config)
        self.llm = build_language_model(config)
        self.seg_query = nn.Parameter(torch.zeros(config.num_mask_tokens, config.llm_width))  # mask tokens
        self.entity_recognition = EntityRecognition(config)
        self.predictor = SegmentationPredictor(in_channels=config.pyramid_channels, mask_shape_size=config.mask_shape_size,
                                               name_scorer_hidden=config.name_scorer_hidden,
                                               **config.predictor_config)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # Every module initialises itself in its constructor (transformers sub-models included).
        pass

    def _region_tokens(self, visual: torch.Tensor, region_points: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
        """visual [B, V, D]; region_points: per sample K_b regions of sample points [n_k, 2]
        -> [B, K_max, D] (zeros past K_b)."""
        batch, _, width = visual.shape
        k_max = max(len(p) for p in region_points)
        out = visual.new_zeros((batch, k_max, width))
        for b, points in enumerate(region_points):
            if len(points):
                out[b, : len(points)] = sample_region_tokens(visual[b], points)
        return out

    def forward(
        self,
        pyramid_pixels: torch.Tensor,
        vision_pixels: torch.Tensor,
        tokens: TokenBatch,
        temporal_latents: torch.Tensor | None = None,
        region_points: Sequence[Sequence[torch.Tensor]] | None = None,
        region_tokens: torch.Tensor | None = None,
        prompt_history: tuple[torch.Tensor, int] | None = None,
        timings: dict[str, float] | None = None,
    ) -> HyperSegOutput:
        """One pass over a batch of B images (or frames of B streams), differentiable end to end:
        `encode_pyramid`, then `language`, then `segment`.

        pyramid_pixels: [B, 3, S, S] (preprocess.ModelInput.pyramid); vision_pixels: [B, 3, s, s];
        tokens: TokenBatch of one task (multimodal_sequence.build_token_batch);
        temporal_latents: [B, L, P] from the previous frame's output, None = first frame;
        region_points: visual prompts, per sample K_b regions of SigLIP-grid sample points [n_k, 2]
            (x, y) in [-1, 1] (region_prompt.region_points);
        region_tokens: [B, K, D_llm] precomputed instead of region_points (reused across frames);
        prompt_history: (sum [B, N, D_llm], frames) of earlier pooled prompts for global aggregation;
        timings: filled with milliseconds per stage (pyramid_encoder, vanilla_encoder, perceiver, llm,
        predictor) when given.
        """
        features = self.encode_pyramid(pyramid_pixels, timings)
        language = self.language(features, vision_pixels, tokens, temporal_latents, region_points, region_tokens,
                                 prompt_history, timings)
        predictions = self.segment(features, language, pyramid_pixels, timings)
        return HyperSegOutput(predictions, language.temporal_latents, language.query_embeddings,
                              language.prompt_embeddings, language.prompt_mask, language.pooled_prompts,
                              language.region_tokens)

    def encode_pyramid(self, pyramid_pixels: torch.Tensor,
                       timings: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
        """[B, 3, S, S] -> res2..res5 features (Swin); needed by every frame."""
        with _stage(timings, "pyramid_encoder", pyramid_pixels.device):
            return self.pyramid_encoder(pyramid_pixels)

    def language(
        self,
        features: dict[str, torch.Tensor],
        vision_pixels: torch.Tensor,
        tokens: TokenBatch,
        temporal_latents: torch.Tensor | None = None,
        region_points: Sequence[Sequence[torch.Tensor]] | None = None,
        region_tokens: torch.Tensor | None = None,
        prompt_history: tuple[torch.Tensor, int] | None = None,
        timings: dict[str, float] | None = None,
    ) -> LanguageOutput:
        """The language side (SigLIP, FVP, Phi, entity recognition) on one frame -> E_Q and E_P,
        which `segment` can reuse on later frames. Arguments as in `forward`."""
        device = vision_pixels.device
        with _stage(timings, "vanilla_encoder", device):
            visual = self.vanilla_encoder(vision_pixels)
        with _stage(timings, "perceiver", device):
            fine = self.fine_grained_perceiver(features, temporal_latents)
            if tokens.task == "visual_prompt" and region_tokens is None:
                if region_points is None:
                    raise ValueError("a visual_prompt batch needs region_points or region_tokens")
                region_tokens = self._region_tokens(visual, region_points)
        with _stage(timings, "llm", device):
            words = self.llm.get_input_embeddings()(tokens.input_ids)
            embeds = splice_embeddings(tokens, words, visual, fine, self.seg_query, region_tokens)
            hidden = language_model_hidden_states(self.llm, embeds, tokens.attention_mask, tokens.position_ids,
                                                  tokens.span)
            batch, width = hidden.shape[0], hidden.shape[-1]
            next_latents = self.fine_grained_perceiver.next_latents(
                hidden[tokens.kind == FINE_GRAINED].view(batch, -1, width))
            queries = self.entity_recognition.query_embeddings(hidden, tokens)
            pooled = self.entity_recognition.pool_prompts(hidden, tokens)
            prompts = self.entity_recognition.prompt_embeddings(aggregate_prompts(pooled, prompt_history), tokens.task)
            names = self.entity_recognition.name_embeddings(words, tokens)
        return LanguageOutput(tokens.task, queries, prompts, tokens.prompt_mask, next_latents, pooled, region_tokens,
                              names)

    def decode_pixels(self, features: dict[str, torch.Tensor], timings: dict[str, float] | None = None):
        """The predictor's pixel decoder alone (it reads the image only): several streams' frames
        can go through it as one batch, then each through `segment` with its own prompts."""
        with _stage(timings, "pixel_decoder", features["res2"].device):
            return self.predictor.pixel_decoder(features)

    def segment(self, features: dict[str, torch.Tensor], language: LanguageOutput, pyramid_pixels: torch.Tensor,
                timings: dict[str, float] | None = None, pixel_features=None) -> PredictorOutput:
        """The segmentation predictor on one frame's features (and its pyramid input, which the
        mask-shape encoder reads), seeded with E_Q / E_P of `language` (this frame's, or an earlier
        frame's in the two-rate mode); `pixel_features`: this frame's `decode_pixels`, if done."""
        task, prompts, prompt_mask = language.task, language.prompt_embeddings, language.prompt_mask
        with _stage(timings, "predictor", prompts.device):
            return self.predictor(
                features, language.query_embeddings,
                refer_embedding=prompts[:, :1] if task in TEXT_TASKS else None,
                class_embeddings=prompts if task == "open_vocabulary" else None,
                class_mask=prompt_mask if task == "open_vocabulary" else None,
                region_embeddings=prompts if task == "visual_prompt" else None,
                region_mask=prompt_mask if task == "visual_prompt" else None,
                pixels=pyramid_pixels,
                name_embeddings=language.name_embeddings,
                pixel_features=pixel_features,
            )


@contextmanager
def _stage(timings: dict[str, float] | None, name: str, device: torch.device):
    if timings is None:
        yield
        return
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    yield
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    timings[name] = timings.get(name, 0.0) + (time.perf_counter() - start) * 1e3
