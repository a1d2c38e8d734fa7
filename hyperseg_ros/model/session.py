"""The streaming session: one HyperSeg forward per frame, with the temporal state carried along.

Everything a stream remembers lives in one `TemporalState` value (`session.state`): the FVP
latents handed from frame t to t+1, the tracker memory, the frame index, the region tokens of the
active visual prompt and the pooled prompt history. `set_command` clears it, `reset` clears it but
keeps the command. ROS-free: numpy in, numpy out.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..command import TEXT_TASKS, Command, validate_command
from .hyperseg import HyperSeg
from .multimodal_sequence import TokenBatch, build_token_batch
from .postprocess import Detections, postprocess
from .preprocess import preprocess_image
from .region_prompt import region_points
from .tracker import IdolTracker, TrackerMemory


@dataclass
class Instance:
    """id >= 1 (persistent while tracked); class_id indexes the command's categories (-1 otherwise);
    score in [0, 1]; mask [H, W] bool at input resolution; box (x, y, w, h) pixels, tight on the mask."""

    id: int
    label: str
    class_id: int
    score: float
    mask: np.ndarray
    box: tuple[int, int, int, int]


@dataclass
class FrameResult:
    """instances best first; timings_ms per stage (preprocess, encoders, perceiver, llm, predictor,
    postprocess, total), milliseconds."""

    instances: list[Instance]
    timings_ms: dict[str, float]


@dataclass
class TemporalState:
    """What a stream carries from frame to frame.

    latents: [1, L, P] FVP latents for the next frame (None = the learned ones: first frame).
    tracker: IDOL track memory (open vocabulary ids).
    frame_index: frames processed since the last command or reset.
    region_tokens: [1, K, D_llm] tokens of the active visual prompt, taken from the first frame.
    prompt_sum: sum [1, N, D_llm] of the earlier frames' pooled prompts (global prompt aggregation;
        their count is frame_index).
    target_id, next_target_id: the referring/reasoning target's id while it is found, and the next id.
    """

    latents: torch.Tensor | None = None
    tracker: TrackerMemory = field(default_factory=TrackerMemory)
    frame_index: int = 0
    region_tokens: torch.Tensor | None = None
    prompt_sum: torch.Tensor | None = None
    target_id: int = 0
    next_target_id: int = 1


class SegmentationSession:
    """One stream's segmentation: `set_command`, then `process` frames in order."""

    def __init__(self, model: HyperSeg, tokenizer, score_threshold: float = 0.5, max_instances: int = 20,
                 global_prompt_aggregation: bool = False):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.score_threshold = float(score_threshold)
        self.max_instances = int(max_instances)
        self.global_prompt_aggregation = global_prompt_aggregation
        self.tracker = IdolTracker()
        self.command: Command | None = None
        self._tokens: TokenBatch | None = None
        self.state = TemporalState()

    def set_command(self, command: Command) -> None:
        """Serve `command` from the next frame on; clears all temporal state. Raises CommandError."""
        command = validate_command(command)
        # frames of a stream: the released video wording (ReasonVOS) for reasoning
        self._tokens = build_token_batch(self.tokenizer, self.model.config, [command], video=True).to(self._device)
        self.command = command
        self.state = TemporalState()

    def reset(self) -> None:
        """Clear the temporal state and track ids; the command stays."""
        self.state = TemporalState()

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def process(self, image_rgb: np.ndarray) -> FrameResult:
        """image_rgb: [H, W, 3] uint8 RGB -> this frame's instances (none before a command)."""
        start = time.perf_counter()
        timings: dict[str, float] = {}
        command, state = self.command, self.state
        if command is None:
            return FrameResult([], {"total": 0.0})
        model, device, dtype = self.model, self._device, self.model.dtype
        inputs = preprocess_image(image_rgb, model.config)
        timings["preprocess"] = (time.perf_counter() - start) * 1e3

        points = None
        if command.task == "visual_prompt" and state.region_tokens is None:
            # the prompts were drawn on this frame (the first one after the command)
            points = [region_points(command.boxes, command.points, inputs.image_size, model.config)]
        history = (state.prompt_sum, state.frame_index) if self.global_prompt_aggregation else None
        out = model(inputs.pyramid[None].to(device, dtype), inputs.vision[None].to(device, dtype), self._tokens,
                    temporal_latents=state.latents, region_points=points, region_tokens=state.region_tokens,
                    prompt_history=history, timings=timings)

        post_start = time.perf_counter()
        state.latents = out.temporal_latents
        state.region_tokens = out.region_tokens
        if self.global_prompt_aggregation:
            pooled = out.pooled_prompts
            state.prompt_sum = pooled if state.prompt_sum is None else state.prompt_sum + pooled
        instances = self._instances(out.predictions, inputs.valid_size, inputs.image_size,
                                    model.config.pyramid_image_size)
        state.frame_index += 1
        timings["postprocess"] = (time.perf_counter() - post_start) * 1e3
        timings["total"] = (time.perf_counter() - start) * 1e3
        return FrameResult(instances, timings)

    def _instances(self, predictions, valid_size, image_size, padded) -> list[Instance]:
        command, state = self.command, self.state
        mask_logits = predictions.mask_logits[0]
        geometry = dict(padded_size=(padded, padded), valid_size=valid_size, image_size=image_size,
                        score_threshold=self.score_threshold)
        if command.task in TEXT_TASKS:
            found = postprocess(predictions.refer_logits[0], mask_logits, max_instances=1, **geometry)
            if len(found.scores) == 0:
                state.target_id = 0
                return []
            if state.target_id == 0:  # (re)found: a new id, kept while it stays found
                state.target_id, state.next_target_id = state.next_target_id, state.next_target_id + 1
            return _to_instances(found, [state.target_id], [command.label], [-1])

        if command.task == "visual_prompt":
            instances = []
            for k, logits in enumerate(predictions.region_logits[0]):
                found = postprocess(logits, mask_logits, max_instances=1, **geometry)
                instances += _to_instances(found, [k + 1], [command.label or f"object {k + 1}"], [-1])
            return sorted(instances, key=lambda inst: -inst.score)

        # open vocabulary: each query takes its best category, then IDOL associates across frames
        class_logits = predictions.class_logits[0]  # [Q, N]
        best_logit, best_class = class_logits.max(dim=1)
        found = postprocess(best_logit, mask_logits, max_instances=self.max_instances, **geometry)
        labels = best_class[found.indices]
        embeddings = predictions.reid_embeddings[0][found.indices]
        ids = self.tracker.update(state.tracker, found.masks, found.scores, embeddings, labels, state.frame_index)
        classes = labels.tolist()
        instances = _to_instances(found, ids, [command.categories[c] for c in classes], classes)
        return [inst for inst in instances if inst.id >= 1]


def _to_instances(found: Detections, ids: list[int], labels: list[str], class_ids: list[int]) -> list[Instance]:
    masks = found.masks.cpu().numpy()
    boxes = found.boxes.cpu().tolist()
    scores = found.scores.float().cpu().tolist()
    return [Instance(int(ids[i]), labels[i], int(class_ids[i]), float(scores[i]), masks[i], tuple(boxes[i]))
            for i in range(len(scores))]
