"""Teach the mask-shape encoder (model/mask_shape.py) and the category word projector the world's names.

Every object of a world scene is what three kinds of name say: its shape ("star"), its colour ("red") and
both ("red star"); the world's other names are not it (`world_names`: 8 + 8 + 64). The encoder reads two
windows of each object:
- one around its true mask, jittered as a decoder's mask would be (softer or sharper, noisy, a box a little
  too small or too large): clean samples of every object, whatever the decoder found;
- one around the mask of the query matched to it, where that mask has IoU >= 0.5 with the truth: what the
  encoder reads at inference (a window of a badly matched query shows another object or nothing).
The loss (`mask_shape_loss`) is the binary cross-entropy of each window's membership of each name (a
one-name list must be judged too, so membership is absolute), plus a cross-entropy over the eight shape
names and one over the eight colours: 77 of the 80 names are "no" for any object, and the binary loss alone
learnt the rare "yes" slowly (shape accuracy at chance after 150 steps). The stage learns shapes alone first
(SHAPES_FIRST). `train.py` adds it to every batch of
a model that has the encoder.

As a stage of its own it trains only these two parts of a model, every other weight frozen: minutes on a CPU.

    python -P -m hyperseg_ros.training.train_mask_shape --init-from models/hyperseg-world --out out/shape-model

Each step draws `--scenes` train scenes (a stream the main training does not use), each with a list of every
shape (so every object is a target), runs the frozen model on them for its masks, and learns from both kinds
of windows.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hyperseg_ros.command import Command
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.mask_shape import true_mask_logits
from hyperseg_ros.model.segmentation_predictor import PredictorOutput
from hyperseg_ros.training.dataset import Batch, Target, make_batch
from hyperseg_ros.training.losses import LossWeights, Match, PaddedTargets, match_rounds
from hyperseg_ros.world.commands import WorldCommand
from hyperseg_ros.world.scene import COLOURS, SHAPES, draw_scene, random_image_size
from hyperseg_ros.world.splits import sample_rng

FOUND_IOU = 0.5  # a matched query's mask is a window of its object from this IoU on
BIAS_LR_SCALE = 25.0  # the membership bias is one scalar that starts far from where it ends
LOSS_PARTS = ("membership", "shape", "colour")
SHAPES_FIRST = 0.4  # a fresh encoder's share of the stage's steps that learn shapes alone: with colour (read from any pixel) and
# membership from the start, shape accuracy stayed at chance for 200 steps; shapes alone rose from step 50
TRUE_DRAWS = 2  # jittered true-mask windows per object and step: they cost no model pass
STREAM = 7  # the sample_rng stream of this stage's scenes: the main training's are 0 and 1


def world_names() -> list[str]:
    """Every name of the world's open-vocabulary categories: shapes, colours, colour + shape."""
    return [*SHAPES, *COLOURS, *(f"{c} {s}" for c in COLOURS for s in SHAPES)]


def name_ids(tokenizer, names: list[str]) -> list[torch.Tensor]:
    """Token ids of each name, as entity_recognition.name_embeddings pools a category's words."""
    return [torch.tensor(tokenizer(name, add_special_tokens=False).input_ids) for name in names]


def name_vectors(model: HyperSeg, ids: list[torch.Tensor], device) -> torch.Tensor:
    """[K, d]: each name's input word embeddings pooled and projected as a category's are."""
    words = model.llm.get_input_embeddings()
    with torch.no_grad():
        pooled = torch.stack([words(i.to(device)).mean(0) for i in ids]).float()
    projector = model.entity_recognition.class_word_projector
    return projector(pooled.to(projector.weight.dtype)).float()


def membership_targets(shapes: torch.Tensor, colours: torch.Tensor) -> torch.Tensor:
    """[M] shape and colour indices -> [M, K] float: which of world_names() each object is."""
    shape = F.one_hot(shapes, len(SHAPES)).float()
    colour = F.one_hot(colours, len(COLOURS)).float()
    both = (colour[:, :, None] * shape[:, None, :]).flatten(1)  # colour-major, as world_names() lists them
    return torch.cat([shape, colour, both], dim=1)


def _jittered_true_windows(target: Target, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A target's masks as mask logits a decoder might give (sharpness, noise) and their boxes (size jitter)."""
    masks, boxes = target.masks.float(), target.boxes.float().clone()
    count = len(masks)
    sharp = torch.empty(count, 1, 1, device=masks.device).uniform_(0.35, 1.35, generator=generator)
    noise = torch.randn(masks.shape, device=masks.device, generator=generator) * 0.7
    logits = true_mask_logits(masks) * sharp + noise
    boxes[:, 2:] *= torch.empty(count, 1, device=masks.device).uniform_(0.8, 1.3, generator=generator)
    return logits, boxes


def mask_shape_loss(model: HyperSeg, batch: Batch, predictions: PredictorOutput, matches: list[Match],
                    names: torch.Tensor, generator: torch.Generator | None = None,
                    parts: tuple[str, ...] = LOSS_PARTS) -> tuple[torch.Tensor, dict]:
    """Every object's windows (true mask, and its matched query's where found) against the world's names.
    names: [K, d] name_vectors of world_names(); parts: of LOSS_PARTS. -> (loss, what was used)."""
    encoder = model.predictor.mask_shape
    mask_logits, boxes = predictions.mask_logits.detach(), predictions.boxes.detach()
    vectors, member = [], []
    found = 0
    for b, (target, (queries, objects)) in enumerate(zip(batch.targets, matches)):
        if target.shapes is None or target.colours is None or not len(target.masks):
            continue
        pixels = batch.pyramid[b:b + 1]
        for _ in range(TRUE_DRAWS):
            logits, true_boxes = _jittered_true_windows(target, generator)
            vectors.append(encoder(logits[None], pixels, true_boxes[None])[0])
            member.append(membership_targets(target.shapes, target.colours))
        if len(queries):
            predicted = mask_logits[b, queries] > 0
            truth = target.masks[objects] > 0.5
            inter = (predicted & truth).flatten(1).sum(1)
            union = (predicted | truth).flatten(1).sum(1).clamp(min=1)
            good = inter / union >= FOUND_IOU
            if good.any():
                q, t = queries[good], objects[good]
                vectors.append(encoder(mask_logits[b:b + 1, q], pixels, boxes[b:b + 1, q])[0])
                member.append(membership_targets(target.shapes[t], target.colours[t]))
                found += int(good.sum())
    if not vectors:
        return names.sum() * 0.0, {"windows": 0, "found": 0}
    vectors, member = torch.cat(vectors), torch.cat(member).to(names.device)
    logits = encoder.membership(vectors.float(), names)
    ranges = {"shape": slice(0, len(SHAPES)), "colour": slice(len(SHAPES), len(SHAPES) + len(COLOURS))}
    loss = F.binary_cross_entropy_with_logits(logits, member) if "membership" in parts else logits.sum() * 0.0
    for part in parts:
        if part in ranges:  # its shape among the shapes, its colour among the colours
            loss = loss + F.cross_entropy(logits[:, ranges[part]], member[:, ranges[part]].argmax(1))
    return loss, {"windows": len(vectors), "found": found, "logits": logits.detach(), "member": member}


def _commands(step: int, scenes: int) -> tuple[list, list[WorldCommand]]:
    """`scenes` train scenes, each with a list of every shape in a random order: every object is a target."""
    drawn, commands = [], []
    for b in range(scenes):
        rng = sample_rng("train", step * scenes + b, stream=STREAM)
        scene = draw_scene(rng, *random_image_size(rng, (120, 480)))
        order = tuple(str(s) for s in rng.permutation(SHAPES))
        targets = tuple(tuple(o.identity for o, m in zip(scene.objects, scene.masks) if m.any() and o.shape == s)
                        for s in order)
        commands.append(WorldCommand(Command(task="open_vocabulary", categories=order),
                                     tuple(sorted(i for t in targets for i in t)), targets, ", ".join(order)))
        drawn.append(scene)
    return drawn, commands


def shape_accuracy(logits: torch.Tensor, member: torch.Tensor) -> float:
    """Share of windows whose best shape name (of the first len(SHAPES)) is their shape."""
    k = len(SHAPES)
    return float((logits[:, :k].argmax(1) == member[:, :k].argmax(1)).float().mean())


def main(argv: list[str] | None = None) -> dict:
    from hyperseg_ros.model.config import HyperSegConfig
    from hyperseg_ros.training.train import export, initialise_from

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--init-from", default="models/hyperseg-world", help="model directory to start from")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--size", type=int, default=24, help="window side (config mask_shape_size) for a model lacking one")
    p.add_argument("--steps", type=int, default=1100)
    p.add_argument("--scenes", type=int, default=12, help="scenes per step")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-minutes", type=float, default=0.0, help="stop after so many minutes (0 = none)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    config = HyperSegConfig.from_pretrained(args.init_from)
    config.mask_shape_size = config.mask_shape_size or args.size
    model = HyperSeg(config)
    tokenizer, fresh = initialise_from(model, Path(args.init_from))
    trained = ("predictor.mask_shape.", "entity_recognition.class_word_projector.")
    for k, v in model.named_parameters():
        v.requires_grad_(k.startswith(trained))
    model.eval()  # the frozen parts as at inference
    bias = model.predictor.mask_shape.bias  # starts at START_BIAS (every name fits) and must travel several units
    params = [v for k, v in model.named_parameters() if k.startswith(trained) and v is not bias]
    optimizer = torch.optim.AdamW([{"params": params, "scale": 1.0}, {"params": [bias], "scale": BIAS_LR_SCALE,
                                                                       "weight_decay": 0.0}], lr=args.lr, weight_decay=1e-4)
    ids = name_ids(tokenizer, world_names())
    weights = LossWeights()
    generator = torch.Generator().manual_seed(args.seed)
    history, started = [], time.monotonic()
    for step in range(args.steps):
        scenes, commands = _commands(step + args.seed * 1_000_000, args.scenes)
        batch = make_batch(scenes, commands, tokenizer, config, video=bool(step % 2))
        with torch.no_grad():
            out = model(batch.pyramid, batch.vision, batch.tokens)
            matches = match_rounds([out.predictions], "open_vocabulary", PaddedTargets.of(batch.targets), weights)[0]
        lr = args.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr * group["scale"]
        parts = ("shape",) if fresh and step < SHAPES_FIRST * args.steps else LOSS_PARTS
        loss, seen = mask_shape_loss(model, batch, out.predictions, matches, name_vectors(model, ids, "cpu"), generator,
                                     parts)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if seen["windows"]:
            history.append({"step": step, "loss": loss.item(), "shape_accuracy": shape_accuracy(seen["logits"], seen["member"]),
                            "found": seen["found"], "windows": seen["windows"]})
        if step % 50 == 0 or step == args.steps - 1:
            recent = history[-50:]
            print(json.dumps({"step": step, "loss": round(np.mean([h["loss"] for h in recent]), 4),
                              "shape_accuracy": round(np.mean([h["shape_accuracy"] for h in recent]), 3),
                              "minutes": round((time.monotonic() - started) / 60, 1)}), flush=True)
        if args.max_minutes and time.monotonic() - started > 60 * args.max_minutes:
            break
    export(model, tokenizer, Path(args.out))
    summary = {"init_from": args.init_from, "steps": step + 1, "scenes_per_step": args.scenes, "lr": args.lr,
               "seconds": round(time.monotonic() - started), "fresh": bool(fresh),
               "last_50": {k: round(float(np.mean([h[k] for h in history[-50:]])), 4) for k in ("loss", "shape_accuracy")}}
    (Path(args.out) / "mask_shape_training.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
