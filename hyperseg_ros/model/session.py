"""The streaming session: HyperSeg on every frame, with the temporal state carried along.

Two rates: the language side (SigLIP, FVP, Phi, entity recognition -> E_Q, E_P) runs on the first
frame after a command or reset, then every `llm_every_n_frames` frames, and again on a frame whose
answer scores below `llm_rerun_score_threshold` when the last language pass had found it. Every
frame runs the pyramid encoder and the segmentation predictor seeded with the cached E_Q / E_P,
then the tracker. With `llm_every_n_frames=1` every frame is the paper's full pass.

Everything a stream remembers lives in one `TemporalState` value (`session.state`): the FVP
latents handed from one language pass to the next, the cached language output, the tracker
memory, the frame index, the region tokens of the active visual prompt and the pooled prompt
history. `set_command` clears it, `reset` clears it but keeps the command. ROS-free: numpy in,
numpy out.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..command import REJECT_TOO_LONG, TEXT_TASKS, Command, CommandError, validate_command
from .hyperseg import HyperSeg, LanguageOutput
from .multimodal_sequence import TokenBatch, build_token_batch
from .pixel_decoder import Mask2FormerPixelDecoderOutput
from .postprocess import Detections, postprocess
from .preprocess import ModelInput, preprocess_image
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
    """instances best first; timings_ms per stage that ran (preprocess, pyramid_encoder, and on
    language frames vanilla_encoder, perceiver, llm; then predictor, postprocess, total), milliseconds;
    language_pass: whether the language side ran on this frame."""

    instances: list[Instance]
    timings_ms: dict[str, float]
    language_pass: bool = False


@dataclass
class TemporalState:
    """What a stream carries from frame to frame.

    latents: [1, L, P] FVP latents for the next language pass (None = the learned ones: first frame);
        each pass hands on its new latents damped by the model's latent_handoff_momentum (`_handoff`).
    language: E_Q / E_P of the last language pass, reused until the next one (None = run it now).
    language_frame: frame_index of that pass; language_found: its answer scored at least
        llm_rerun_score_threshold (a later drop below the threshold re-runs the language side).
    tracker: IDOL track memory (open vocabulary ids).
    frame_index: frames processed since the last command or reset.
    region_tokens: [1, K, D_llm] tokens of the active visual prompt, taken from the first frame.
    prompt_sum, prompt_frames: sum [1, N, D_llm] and count of the earlier language passes' pooled
        prompts (global prompt aggregation; fewer than frame_index between language passes).
    target_id, next_target_id: the referring/reasoning target's id while it is found, and the next id.
    """

    latents: torch.Tensor | None = None
    language: LanguageOutput | None = None
    language_frame: int = 0
    language_found: bool = False
    tracker: TrackerMemory = field(default_factory=TrackerMemory)
    frame_index: int = 0
    region_tokens: torch.Tensor | None = None
    prompt_sum: torch.Tensor | None = None
    prompt_frames: int = 0
    target_id: int = 0
    next_target_id: int = 1


# Defaults of the two rates, chosen on world clips (scripts/bench_two_rate.py, docs/MEASUREMENTS.md "Two rates").
LLM_EVERY_N_FRAMES = 4
LLM_RERUN_SCORE_THRESHOLD = 0.5
# An open-vocabulary track stays published while its score is at least this share of the threshold; a new one
# needs the threshold itself. Without it an object scoring near the threshold blinks (on `val` still streams,
# answers of 0.23 on frame 1 fell to 0.17 on frame 5, after a language pass).
TRACK_KEEP_SHARE = 0.5


@dataclass
class EncodedImage:
    """One frame through the passes that read the image only (pre-processing, pyramid encoder, pixel
    decoder), made by `encode_images` for several streams at once; `timings_ms`: its share."""

    inputs: ModelInput
    pyramid: torch.Tensor  # [1, 3, S, S] on the model's device
    features: dict[str, torch.Tensor]
    pixel_features: Mask2FormerPixelDecoderOutput
    timings_ms: dict[str, float]


@torch.inference_mode()
def encode_images(model: HyperSeg, images: list[np.ndarray]) -> list[EncodedImage]:
    """Frames of several streams (uint8 [H, W, 3] RGB, any sizes) through the image-only passes as one
    batch; each then goes to its own stream's `SegmentationSession.process(image, encoded)`."""
    start, timings = time.perf_counter(), {}
    device, dtype = next(model.parameters()).device, model.dtype
    inputs = [preprocess_image(image, model.config) for image in images]
    timings["preprocess"] = (time.perf_counter() - start) * 1e3
    pyramid = torch.stack([i.pyramid for i in inputs]).to(device, dtype)  # padded squares: one size
    features = model.encode_pyramid(pyramid, timings)
    pixels = model.decode_pixels(features, timings)
    share = {name: ms / len(images) for name, ms in timings.items()}

    def one(b: int) -> EncodedImage:
        return EncodedImage(inputs[b], pyramid[b:b + 1], {k: v[b:b + 1] for k, v in features.items()},
                            Mask2FormerPixelDecoderOutput(mask_features=pixels.mask_features[b:b + 1],
                                                          multi_scale_features=tuple(
                                                              m[b:b + 1] for m in pixels.multi_scale_features)),
                            share)
    return [one(b) for b in range(len(images))]


class SegmentationSession:
    """One stream's segmentation: `set_command`, then `process` frames in order.

    score_threshold: answers scoring below it are dropped, for every task; None = the model's own
    threshold per task (config.score_thresholds)."""

    def __init__(self, model: HyperSeg, tokenizer, score_threshold: float | None = None, max_instances: int = 20,
                 global_prompt_aggregation: bool = False, llm_every_n_frames: int = LLM_EVERY_N_FRAMES,
                 llm_rerun_score_threshold: float = LLM_RERUN_SCORE_THRESHOLD):
        if int(llm_every_n_frames) < 1:
            raise ValueError(f"llm_every_n_frames must be >= 1, not {llm_every_n_frames}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.score_threshold = None if score_threshold is None else float(score_threshold)
        self.max_instances = int(max_instances)
        self.global_prompt_aggregation = global_prompt_aggregation
        self.llm_every_n_frames = int(llm_every_n_frames)
        self.llm_rerun_score_threshold = float(llm_rerun_score_threshold)
        self.tracker = IdolTracker()
        self.command: Command | None = None
        self._tokens: TokenBatch | None = None
        self.state = TemporalState()

    def check_command(self, command: Command) -> None:
        """Raise CommandError when `command`'s input sequence (prompt, image and prompt tokens) is
        longer than the model's language model reads (max_position_embeddings): past it positions
        were never trained, and a language pass costs in proportion to the length."""
        tokens = build_token_batch(self.tokenizer, self.model.config, [validate_command(command)], video=True)
        length, limit = tokens.input_ids.shape[1], int(self.model.config.llm_config["max_position_embeddings"])
        if length > limit:
            raise CommandError(f"command too long for this model: {length} tokens (max_tokens {limit})", REJECT_TOO_LONG)

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

    def threshold(self, task: str) -> float:
        """The score threshold applied to `task`'s answers."""
        if task in TEXT_TASKS and self.model.config.answer_always:
            return 0.0  # the release answers with its top-1 mask, whatever its score
        if self.score_threshold is not None:
            return self.score_threshold
        return self.model.config.score_threshold(task)

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def process(self, image_rgb: np.ndarray, encoded: EncodedImage | None = None) -> FrameResult:
        """image_rgb: [H, W, 3] uint8 RGB -> this frame's instances (none before a command).
        encoded: this image from `encode_images` (batched with other streams' frames), if done."""
        start = time.perf_counter()
        timings: dict[str, float] = {}
        command, state = self.command, self.state
        if command is None:
            return FrameResult([], {"total": 0.0})
        model, device, dtype = self.model, self._device, self.model.dtype
        pixel_features = None
        if encoded is None:
            inputs = preprocess_image(image_rgb, model.config)
            timings["preprocess"] = (time.perf_counter() - start) * 1e3
            pyramid = inputs.pyramid[None].to(device, dtype)
            features = model.encode_pyramid(pyramid, timings)
        else:
            inputs, pyramid, features = encoded.inputs, encoded.pyramid, encoded.features
            pixel_features = encoded.pixel_features
            timings.update(encoded.timings_ms)
        language_pass = (state.language is None
                         or state.frame_index - state.language_frame >= self.llm_every_n_frames)
        if not language_pass:
            ids = copy.deepcopy((state.tracker, state.target_id, state.next_target_id))
            instances = self._answer(model.segment(features, state.language, pyramid, timings, pixel_features),
                                     inputs, timings)
            if state.language_found and _answer_score(instances, command) < self.llm_rerun_score_threshold:
                # the cached E_Q / E_P lost the target: answer this frame from a fresh language pass
                state.tracker, state.target_id, state.next_target_id = ids
                language_pass = True
        if language_pass:
            points = None
            if command.task == "visual_prompt" and state.region_tokens is None:
                # the prompts were drawn on this frame (the first one after the command)
                points = [region_points(command.boxes, command.points, inputs.image_size, model.config)]
            history = (state.prompt_sum, state.prompt_frames) if self.global_prompt_aggregation else None
            language = model.language(features, inputs.vision[None].to(device, dtype), self._tokens,
                                      temporal_latents=state.latents, region_points=points,
                                      region_tokens=state.region_tokens, prompt_history=history, timings=timings)
            state.language, state.language_frame = language, state.frame_index
            state.latents = _handoff(model, state.latents, language.temporal_latents)
            state.region_tokens = language.region_tokens
            if self.global_prompt_aggregation:
                pooled = language.pooled_prompts
                state.prompt_sum = pooled if state.prompt_sum is None else state.prompt_sum + pooled
                state.prompt_frames += 1
            instances = self._answer(model.segment(features, language, pyramid, timings, pixel_features),
                                     inputs, timings)
            state.language_found = _answer_score(instances, command) >= self.llm_rerun_score_threshold
        state.frame_index += 1
        timings["total"] = (time.perf_counter() - start) * 1e3 + sum(encoded.timings_ms.values() if encoded else ())
        return FrameResult(instances, timings, language_pass)

    def _answer(self, predictions, inputs, timings: dict[str, float]) -> list[Instance]:
        post_start = time.perf_counter()
        instances = self._instances(predictions, inputs.valid_size, inputs.image_size,
                                    self.model.config.pyramid_image_size)
        timings["postprocess"] = timings.get("postprocess", 0.0) + (time.perf_counter() - post_start) * 1e3
        return instances

    def _instances(self, predictions, valid_size, image_size, padded) -> list[Instance]:
        command, state = self.command, self.state
        mask_logits = predictions.mask_logits[0]
        geometry = dict(padded_size=(padded, padded), valid_size=valid_size, image_size=image_size,
                        score_threshold=self.threshold(command.task),
                        scores_at_image_resolution=self.model.config.scores_at == "image")
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
        if predictions.name_logits is not None:  # the name scorer's, where the model has one (name_scorer.py)
            best_logit, best_class = predictions.name_logits[0].max(dim=1)
        elif self.model.config.open_vocabulary_scoring == "softmax_background":
            class_logits = predictions.class_logits[0]  # [Q, N + 1]: background last
            probabilities = class_logits.float().softmax(dim=1)[:, :-1]  # background column dropped
            best_probability, best_class = probabilities.max(dim=1)
            best_logit = torch.logit(best_probability)  # postprocess scores with sigmoid(logit)
        else:
            best_logit, best_class = predictions.class_logits[0].max(dim=1)
        threshold = geometry["score_threshold"]
        geometry["score_threshold"] = TRACK_KEEP_SHARE * threshold  # what may keep a track (not start one)
        found = postprocess(best_logit, mask_logits, max_instances=self.max_instances, **geometry)
        labels = best_class[found.indices]
        embeddings = predictions.reid_embeddings[0][found.indices]
        ids = self.tracker.update(state.tracker, found.masks, found.scores, embeddings, labels, state.frame_index,
                                  start_at=threshold)
        classes = labels.tolist()
        instances = _to_instances(found, ids, [command.categories[c] for c in classes], classes)
        return [inst for inst in instances if inst.id >= 1]


def _handoff(model: HyperSeg, current: torch.Tensor | None, new: torch.Tensor) -> torch.Tensor:
    """The FVP latents the next language pass starts from: the new ones, damped by the model's
    latent_handoff_momentum m toward the current ones (the learned latents before the first hand-off)."""
    m = float(model.config.latent_handoff_momentum)
    if m == 0.0:
        return new
    if current is None:
        current = model.fine_grained_perceiver.initial_latents(new.shape[0])
    return m * current.to(new.dtype) + (1.0 - m) * new


def _answer_score(instances: list[Instance], command: Command) -> float:
    """How well a frame answers its command: the weakest visual prompt's best score, else the best
    instance's score (0 when something asked for is missing)."""
    if command.task == "visual_prompt":
        best = {inst.id: inst.score for inst in instances}
        return min(best.get(k + 1, 0.0) for k in range(len(command.boxes) + len(command.points)))
    return max((inst.score for inst in instances), default=0.0)


def _to_instances(found: Detections, ids: list[int], labels: list[str], class_ids: list[int]) -> list[Instance]:
    masks = found.masks.cpu().numpy()
    boxes = found.boxes.cpu().tolist()
    scores = found.scores.float().cpu().tolist()
    return [Instance(int(ids[i]), labels[i], int(class_ids[i]), float(scores[i]), masks[i], tuple(boxes[i]))
            for i in range(len(scores))]
