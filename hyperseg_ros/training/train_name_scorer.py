"""Fit the open-vocabulary name scorer (model/name_scorer.py) on the frozen model's evidence.

Each of `--scenes` train scenes (a stream no other stage draws) gets a world open-vocabulary command
(world/commands.py: present and absent categories; shapes, colours and both). The frozen model answers it
once, and every (query, category) pair's EVIDENCE is kept with its target: 1 where the query's mask is the
best of an object the category names (IoU >= 0.5 at the image's size, as the evaluation counts it), else 0
(a second mask of the same object is a duplicate, which the answer must not score high either). The scorer is
then fitted to all pairs at once (full batch): a few minutes on a CPU, all of it the model's passes.
The last HELD_OUT of the scenes are not fitted; their loss is reported.

    python -P -m hyperseg_ros.training.train_name_scorer --init-from models/hyperseg-world --out out/name-model

Run it after anything that changes the model's masks, class head or mask-shape encoder (the evidence moves).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.multimodal_sequence import build_token_batch
from hyperseg_ros.model.postprocess import upsample_masks
from hyperseg_ros.model.preprocess import preprocess_image
from hyperseg_ros.training.metrics import iou
from hyperseg_ros.world.commands import open_vocabulary
from hyperseg_ros.world.scene import draw_scene, random_image_size
from hyperseg_ros.world.splits import sample_rng

STREAM = 8  # the sample_rng stream of this stage's scenes: the main training's are 0 and 1, the shape stage's 7
FOUND_IOU = 0.5
HELD_OUT = 0.1
HIDDEN = 32  # the scorer's width for a model that lacks one


def pair_targets(mask_ious: np.ndarray, object_categories: list[int], count: int) -> np.ndarray:
    """mask_ious [Q, M] of the queries' masks with the true objects, object_categories: the listed category
    (index) of each object, count: categories listed -> [Q, count] float: 1 where the query is its object's
    best mask (IoU >= FOUND_IOU) and the category names it."""
    targets = np.zeros((mask_ious.shape[0], count), np.float32)
    for m, category in enumerate(object_categories):
        best = int(mask_ious[:, m].argmax()) if mask_ious.shape[0] else -1
        if best >= 0 and mask_ious[best, m] >= FOUND_IOU:
            targets[best, category] = 1.0
    return targets


@torch.no_grad()
def collect(model: HyperSeg, tokenizer, scenes: int, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """-> per scene: evidence [Q*N, E] and targets [Q*N] of its world open-vocabulary command."""
    seen = {}
    hook = model.predictor.name_scorer.register_forward_hook(lambda module, args, out: seen.update(evidence=args[0]))
    evidence, targets = [], []
    try:
        for i in tqdm(range(scenes), desc="name scorer evidence", mininterval=10):
            rng = sample_rng("train", seed * 1_000_000 + i, stream=STREAM)
            scene = draw_scene(rng, *random_image_size(rng, (120, 480)))
            wc = open_vocabulary(rng, scene)
            inputs = preprocess_image(scene.image, model.config)
            tokens = build_token_batch(tokenizer, model.config, [wc.command], video=True)
            predictions = model(inputs.pyramid[None], inputs.vision[None], tokens).predictions
            size = model.config.pyramid_image_size
            masks = upsample_masks(predictions.mask_logits[0], padded_size=(size, size), valid_size=inputs.valid_size,
                                   image_size=inputs.image_size).numpy() > 0
            index = {o.identity: k for k, o in enumerate(scene.objects)}
            objects = [(c, scene.masks[index[i]]) for c, ids in enumerate(wc.category_targets) for i in ids]
            ious = np.array([[iou(m, truth) for _, truth in objects] for m in masks]).reshape(len(masks), len(objects))
            count = len(wc.command.categories)
            evidence.append(seen["evidence"][0, :, :count].reshape(-1, seen["evidence"].shape[-1]).float())
            targets.append(torch.from_numpy(pair_targets(ious, [c for c, _ in objects], count)).flatten())
    finally:
        hook.remove()
    return evidence, targets


def fit(scorer: torch.nn.Module, evidence: torch.Tensor, targets: torch.Tensor, steps: int = 2000,
        lr: float = 1e-2) -> list[float]:
    """Standardise the scorer's inputs on `evidence` [P, E] and fit it to `targets` [P] -> the loss per step."""
    scorer.mean.copy_(evidence.mean(0))
    scorer.std.copy_(evidence.std(0).clamp(min=1e-3))
    optimizer = torch.optim.Adam(scorer.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
        loss = F.binary_cross_entropy_with_logits(scorer(evidence), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def main(argv: list[str] | None = None) -> dict:
    from hyperseg_ros.model.config import HyperSegConfig
    from hyperseg_ros.training.train import export, initialise_from

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--init-from", default="models/hyperseg-world", help="model directory to start from")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--scenes", type=int, default=3000)
    p.add_argument("--steps", type=int, default=2000, help="full-batch optimiser steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    config = HyperSegConfig.from_pretrained(args.init_from)
    if not config.mask_shape_size:
        raise SystemExit(f"{args.init_from}: the name scorer reads the mask-shape encoder, which this model lacks "
                         "(train it first: make train-shapes)")
    config.name_scorer_hidden = config.name_scorer_hidden or HIDDEN
    model = HyperSeg(config)
    tokenizer, _ = initialise_from(model, Path(args.init_from))
    model.eval()
    started = time.monotonic()
    evidence, targets = collect(model, tokenizer, args.scenes, args.seed)
    cut = max(1, int(round(len(evidence) * (1 - HELD_OUT))))
    scorer = model.predictor.name_scorer
    losses = fit(scorer, torch.cat(evidence[:cut]), torch.cat(targets[:cut]), args.steps)
    with torch.no_grad():
        held = (F.binary_cross_entropy_with_logits(scorer(torch.cat(evidence[cut:])), torch.cat(targets[cut:])).item()
                if cut < len(evidence) else float("nan"))
    export(model, tokenizer, Path(args.out))
    summary = {"init_from": args.init_from, "scenes": args.scenes, "fitted_scenes": cut,
               "pairs": int(sum(len(t) for t in targets)), "positives": int(sum(t.sum().item() for t in targets)),
               "steps": args.steps, "loss": round(losses[-1], 4), "held_out_loss": round(held, 4),
               "seconds": round(time.monotonic() - started)}
    (Path(args.out) / "name_scorer_training.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
