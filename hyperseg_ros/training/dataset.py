"""Training batches drawn from the procedural world: one task per batch, images or short clips.

Scene b of step s uses the train seed `s * scenes + b`, so a run is reproducible and a resumed
run sees exactly the data it would have seen. A scene may carry several commands
(`commands_per_scene`, as LISA and HyperSeg sample several expressions per image): its samples are
adjacent in the batch, so the image-only passes can run once per scene (training.shared_passes).
Ground-truth masks are given on the predictor's stride-4 grid of the padded pyramid input (area
fractions in [0, 1]), with the prompt each instance answers (0 for referring / reasoning, the
category index, the region index).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.multimodal_sequence import TokenBatch, build_token_batch
from hyperseg_ros.model.preprocess import preprocess_image
from hyperseg_ros.model.region_prompt import region_points
from hyperseg_ros.world.commands import WorldCommand, sample_command
from hyperseg_ros.world.scene import COLOURS, SHAPES, Scene, draw_scene, random_image_size
from hyperseg_ros.world.splits import sample_rng
from hyperseg_ros.world.video import draw_clip

COLOUR_NAMES = tuple(COLOURS)
VIDEO_WINDOW = 3  # consecutive frames per training clip: temporal latents and re-id across them
STILL_CLIPS = 0.25  # share of clips that hold still (one frame repeated): carried latents must not change the answer


@dataclass
class Target:
    """Ground truth of one image for the predictor. masks: [M, h, w] float32 area fractions on the
    stride-4 grid; labels: [M] int64 prompt index; identities: [M] int64 object identities;
    boxes: [M, 4] float32 (cx, cy, w, h) in [0, 1] of the padded input; shapes, colours: [M] int64 index
    into the world's SHAPES and COLOURS (None where unknown): what the mask-shape loss teaches."""

    masks: torch.Tensor
    labels: torch.Tensor
    identities: torch.Tensor
    boxes: torch.Tensor
    shapes: torch.Tensor | None = None
    colours: torch.Tensor | None = None

    def to(self, device) -> Target:
        return Target(self.masks.to(device), self.labels.to(device), self.identities.to(device), self.boxes.to(device),
                      *(None if t is None else t.to(device) for t in (self.shapes, self.colours)))


@dataclass
class Batch:
    """One forward pass worth of inputs (a frame of each of B samples) and its targets."""

    pyramid: torch.Tensor  # [B, 3, S, S]
    vision: torch.Tensor  # [B, 3, s, s]
    tokens: TokenBatch
    region_points: list[list[torch.Tensor]] | None  # per sample and region [n, 2] (visual prompts)
    targets: list[Target]

    def to(self, device) -> Batch:
        return Batch(self.pyramid.to(device), self.vision.to(device), self.tokens.to(device), self.region_points,
                     [t.to(device) for t in self.targets])


def stride4_target(masks: np.ndarray, valid_size: tuple[int, int], config: HyperSegConfig) -> torch.Tensor:
    """[M, H, W] bool image masks -> [M, S/4, S/4] float32 area fractions on the padded grid."""
    grid = config.pyramid_image_size // 4
    h, w = max(1, round(valid_size[0] / 4)), max(1, round(valid_size[1] / 4))
    out = np.zeros((len(masks), grid, grid), np.float32)
    for i, m in enumerate(masks):
        out[i, :h, :w] = cv2.resize(m.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
    np.clip(out, 0, 1, out=out)  # area averaging over large frames rounds a hair above 1
    return torch.from_numpy(out)


def boxes_of(masks: torch.Tensor) -> torch.Tensor:
    """[M, h, w] float masks -> [M, 4] (cx, cy, w, h) in [0, 1] of the grid (zeros when empty)."""
    out = torch.zeros((masks.shape[0], 4))
    for i, m in enumerate(masks > 0.5):
        ys, xs = torch.nonzero(m, as_tuple=True)
        if len(xs):
            x0, x1 = xs.min().item(), xs.max().item() + 1
            y0, y1 = ys.min().item(), ys.max().item() + 1
            out[i] = torch.tensor([(x0 + x1) / 2 / m.shape[1], (y0 + y1) / 2 / m.shape[0],
                                   (x1 - x0) / m.shape[1], (y1 - y0) / m.shape[0]])
    return out


def instances(scene: Scene, wc: WorldCommand) -> tuple[np.ndarray, list[int], list[int]]:
    """Ground-truth instances of a command in one scene -> (masks [M,H,W] bool, labels, identities)."""
    index = {o.identity: i for i, o in enumerate(scene.objects)}
    task = wc.command.task
    if task == "open_vocabulary":
        groups = wc.category_targets
    elif task == "visual_prompt":
        groups = tuple((i,) for i in wc.targets)  # one object per region
    else:
        groups = (wc.targets,)
    masks, labels, ids = [], [], []
    for label, group in enumerate(groups):
        for identity in group:
            m = scene.masks[index[identity]]
            if m.any():
                masks.append(m), labels.append(label), ids.append(identity)
    empty = np.zeros((0, scene.height, scene.width), bool)
    return (np.stack(masks) if masks else empty), labels, ids


def make_batch(frames: list[Scene], commands: list[WorldCommand], tokenizer: PreTrainedTokenizerBase,
               config: HyperSegConfig, video: bool = False, prompts_from: list[Scene] | None = None) -> Batch:
    """Batch of one frame per sample. prompts_from: the frames the visual prompts were drawn on
    (the first frame of a clip); defaults to `frames`."""
    first = {}  # a scene carrying several commands is preprocessed once
    inputs = [first.setdefault(id(s), preprocess_image(s.image, config)) for s in frames]
    targets = []
    for scene, wc, inp in zip(frames, commands, inputs):
        masks, labels, ids = instances(scene, wc)
        grid = stride4_target(masks, inp.valid_size, config)
        objects = {o.identity: o for o in scene.objects}
        targets.append(Target(grid, torch.tensor(labels, dtype=torch.long), torch.tensor(ids, dtype=torch.long),
                              boxes_of(grid), torch.tensor([SHAPES.index(objects[i].shape) for i in ids], dtype=torch.long),
                              torch.tensor([COLOUR_NAMES.index(objects[i].colour) for i in ids], dtype=torch.long)))
    region = None
    if commands[0].command.task == "visual_prompt":
        region = [region_points(wc.command.boxes, wc.command.points, (s.height, s.width), config)
                  for wc, s in zip(commands, prompts_from or frames)]
    tokens = build_token_batch(tokenizer, config, [wc.command for wc in commands], video=video)
    return Batch(torch.stack([i.pyramid for i in inputs]), torch.stack([i.vision for i in inputs]), tokens, region,
                 targets)


def _size(rng: np.random.Generator) -> tuple[int, int]:
    return random_image_size(rng)


def _scenes(batch_size: int, commands_per_scene: int) -> int:
    if commands_per_scene < 1 or batch_size % commands_per_scene:
        raise ValueError(f"batch size {batch_size} is not a multiple of commands_per_scene {commands_per_scene}")
    return batch_size // commands_per_scene


def image_batch(step: int, batch_size: int, task: str, tokenizer: PreTrainedTokenizerBase, config: HyperSegConfig,
                no_match_rate: float = 0.2, split: str = "train", commands_per_scene: int = 1) -> Batch:
    """Batch `step` of still images for `task` (one of command.TASKS): batch_size / commands_per_scene
    scenes, each with commands_per_scene commands. Half the batches use the frame wording of the
    prompt (the session serves every image as a stream frame)."""
    video = bool(np.random.default_rng([step, 11]).random() < 0.5)
    count = _scenes(batch_size, commands_per_scene)
    scenes, commands = [], []
    for b in range(count):
        rng = sample_rng(split, step * count + b)
        scene = draw_scene(rng, *_size(rng))
        for _ in range(commands_per_scene):
            scenes.append(scene)
            commands.append(sample_command(rng, scene, task, no_match_rate))
    return make_batch(scenes, commands, tokenizer, config, video=video)


def clip_batches(step: int, batch_size: int, task: str, tokenizer: PreTrainedTokenizerBase, config: HyperSegConfig,
                 window: int = VIDEO_WINDOW, split: str = "train", commands_per_scene: int = 1) -> list[Batch]:
    """`window` consecutive frames of batch_size / commands_per_scene clips for `task`, each clip
    with commands_per_scene commands, as one Batch per frame. A command is drawn on the window's
    first frame with static attributes (a moving object keeps its colour, shape and size, not its
    position); visual prompts are given on that first frame. A share STILL_CLIPS of the clips
    repeats their first frame."""
    count = _scenes(batch_size, commands_per_scene)
    clips, commands = [], []
    for b in range(count):
        rng = sample_rng(split, step * count + b, stream=1)
        width, height = _size(rng)
        clip = draw_clip(rng, width, height, frames=8)
        start = int(rng.integers(0, len(clip.frames) - window + 1))
        frames = clip.frames[start:start + window]
        if rng.random() < STILL_CLIPS:  # a robot often looks at a still scene: the first answer is the answer
            frames = [frames[0]] * window
        for _ in range(commands_per_scene):
            clips.append(frames)
            commands.append(sample_command(rng, frames[0], task, no_match_rate=0.1, static=True))
    first = [c[0] for c in clips]
    return [make_batch([c[t] for c in clips], commands, tokenizer, config, video=True, prompts_from=first)
            for t in range(window)]
