"""Train HyperSeg on the procedural world and write a `from_pretrained` model directory.

    python -P -m hyperseg_ros.training.train --size small --steps 6000 --out models/hyperseg-world
    python -P -m hyperseg_ros.training.train --init-from models/hyperseg-world --batch-size 16 --commands-per-scene 4

Each step is one task (referring, reasoning, open vocabulary, visual prompt) on still images, or a
short clip (temporal latents carried frame to frame, re-id loss across frames). Data comes from
the train split, scene b of step s = train seed s * scenes + b, so runs are reproducible and resume
exactly. With `--commands-per-scene K` each scene carries K commands and the image-only modules run
once per scene (training.shared_passes). Checkpoints: weights and optimizer tensors in safetensors, everything else in JSON.

On a GPU: `--amp bf16` runs the forward pass under bfloat16 autocast (losses in float32),
`--export-every-minutes M` rewrites the `--out` directory every M minutes (a run killed later still
leaves weights), `--max-shard-size 15MB` writes it as safetensors shards, and the summary reports
samples/s, the share of the loop spent waiting on the data workers, GPU utilisation and memory
(training.throughput). scripts/device_job.sh runs it so.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.loading import WEIGHTS_INDEX, check_directory, load_lacking
from hyperseg_ros.model.segmentation_predictor import PredictorOutput
from hyperseg_ros.model.tokenizer import build_word_tokenizer
from hyperseg_ros.training.dataset import clip_batches, image_batch
from hyperseg_ros.training.losses import LossWeights, reid_loss, segmentation_loss
from hyperseg_ros.training.shared_passes import shared_image_passes
from hyperseg_ros.training.throughput import ThroughputMeter
from hyperseg_ros.training.train_mask_shape import mask_shape_loss, name_ids, name_vectors, world_names
from hyperseg_ros.world.scene import SHAPES
from hyperseg_ros.world.vocabulary import world_words

# Share of steps per kind of batch; "clip:<task>" = a 3-frame clip of that task.
# Language grounding (referring, reasoning, category names) is what the world makes hard, so it
# gets most steps; tracking learns quickly from the clips that remain.
# Modules added to the architecture after the shipped weights were trained: --init-from leaves them
# fresh, and they learn FRESH_LR_SCALE times faster than the pretrained rest.
FRESH_MODULES = ("predictor.mask_shape.", "entity_recognition.class_word_projector.", "predictor.name_scorer.")
FRESH_LR_SCALE = 10.0
SCHEDULE = {"referring": 0.22, "reasoning": 0.16, "open_vocabulary": 0.2, "visual_prompt": 0.12,
            "clip:open_vocabulary": 0.08, "clip:visual_prompt": 0.08, "clip:referring": 0.09, "clip:reasoning": 0.05}


def step_kind(step: int, seed: int, schedule: dict[str, float] = SCHEDULE) -> str:
    """The kind of batch of a step (a pure function of step, seed and schedule, for exact resume)."""
    rng = np.random.default_rng([seed, step, 7])
    kinds = list(schedule)
    return kinds[int(rng.choice(len(kinds), p=np.array(list(schedule.values())) / sum(schedule.values())))]


def parse_schedule(text: str) -> dict[str, float]:
    """"open_vocabulary=0.4,clip:referring=0.1" -> SCHEDULE with those shares replaced."""
    schedule = dict(SCHEDULE)
    for item in filter(None, text.split(",")):
        kind, _, share = item.partition("=")
        if kind.strip() not in SCHEDULE:
            raise SystemExit(f"--schedule: unknown kind {kind!r}; kinds: {', '.join(SCHEDULE)}")
        schedule[kind.strip()] = float(share)
    return schedule


def load_pretrained(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> set[str]:
    """Load `state` into `model`; every weight of `state` must fit, and the only weights it may lack
    are those of modules this package added since it was trained (FRESH_MODULES). -> the names left fresh."""
    result = model.load_state_dict(state, strict=False)
    unexpected = list(result.unexpected_keys)
    missing = [k for k in result.missing_keys if not k.startswith(FRESH_MODULES)]
    if unexpected or missing:
        raise RuntimeError(f"--init-from does not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return set(result.missing_keys)


def initialise_from(model: torch.nn.Module, directory: Path, copy_weights: bool = True):
    """The tokenizer of model directory `directory` and, with `copy_weights`, its weights copied into
    `model` -> (tokenizer, names left as `model`'s constructor made them: FRESH_MODULES it lacks)."""
    check_directory(directory)
    initial, tokenizer, lacking = load_lacking(directory, torch.float32, may_lack=FRESH_MODULES)
    if not copy_weights:
        return tokenizer, set()
    # what `directory` lacks holds uninitialised memory in `initial`: copy everything else
    return tokenizer, load_pretrained(model, {k: v for k, v in initial.state_dict().items() if k not in lacking})


def apply_config_overrides(config: HyperSegConfig, items: list[str]) -> None:
    """--config KEY=JSON: set top-level config fields (e.g. category_prompts="parallel"), checked."""
    for item in items:
        key, _, value = item.partition("=")
        if not hasattr(config, key):
            raise SystemExit(f"--config: no config field {key!r}")
        try:
            setattr(config, key, json.loads(value))
        except json.JSONDecodeError:  # a bare word: a string
            setattr(config, key, value)
    HyperSegConfig(**config.to_dict())  # validates the conventions


class WorldBatches(torch.utils.data.Dataset):
    """Item `step` = (kind, [Batch per frame]); drawn in DataLoader workers."""

    def __init__(self, tokenizer, config: HyperSegConfig, batch_size: int, seed: int, commands_per_scene: int = 1,
                 schedule: dict[str, float] = SCHEDULE):
        self.tokenizer, self.config, self.batch_size, self.seed = tokenizer, config, batch_size, seed
        self.commands_per_scene, self.schedule = commands_per_scene, schedule

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, step: int):
        kind = step_kind(step, self.seed, self.schedule)
        data_step = step + self.seed * 1_000_000  # another seed = other scenes
        if kind.startswith("clip:"):
            per = self.commands_per_scene
            clips = max(per, self.batch_size // 2 // per * per)  # half the samples of an image step
            return kind, clip_batches(data_step, clips, kind[5:], self.tokenizer, self.config,
                                      commands_per_scene=self.commands_per_scene)
        return kind, [image_batch(data_step, self.batch_size, kind, self.tokenizer, self.config,
                                  commands_per_scene=self.commands_per_scene)]


def learning_rate(step: int, progress: float, peak: float, warmup: int = 200) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 5% of the peak as progress goes 0 -> 1."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_step(model: HyperSeg, kind: str, frames: list, weights: LossWeights, device,
               commands_per_scene: int = 1, amp: torch.dtype | None = None,
               shape_names: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Forward + losses of one item (no backward). Clips carry latents and region tokens.
    amp: autocast dtype of the forward pass (None = off); the losses are computed in float32.
    shape_names: name_ids(tokenizer, world_names()), for the mask-shape loss of a model with a mask-shape encoder."""
    with shared_image_passes(model, commands_per_scene):
        return _frame_losses(model, kind, frames, weights, torch.device(device), amp, shape_names)


def _float32(pred: PredictorOutput) -> PredictorOutput:
    """The predictions in float32 (autocast leaves them bfloat16; matching and losses want float32)."""
    cast = {f.name: getattr(pred, f.name) for f in dataclasses.fields(pred)}
    cast = {k: v.float() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in cast.items()}
    cast["aux"] = [_float32(a) for a in pred.aux]
    return PredictorOutput(**cast)


def _frame_losses(model: HyperSeg, kind: str, frames: list, weights: LossWeights, device,
                  amp: torch.dtype | None = None, shape_names: list[torch.Tensor] | None = None
                  ) -> dict[str, torch.Tensor]:
    task = kind.split(":")[-1]
    latents = region_tokens = None
    previous = None
    total: dict[str, torch.Tensor] = {}
    for batch in frames:
        batch = batch.to(device)
        autocast = (torch.autocast(device.type, dtype=amp) if amp is not None else contextlib.nullcontext())
        with autocast:
            out = model(batch.pyramid, batch.vision, batch.tokens, temporal_latents=latents,
                        region_points=batch.region_points if region_tokens is None else None,
                        region_tokens=region_tokens)
        if amp is not None:
            out = dataclasses.replace(out, predictions=_float32(out.predictions))
        losses, matches = segmentation_loss(out.predictions, task, batch.targets, weights)
        if shape_names is not None and model.predictor.mask_shape is not None:
            names = name_vectors(model, shape_names, device)
            losses["shape"] = weights.shape * mask_shape_loss(model, batch, out.predictions, matches, names)[0]
        if previous is not None:
            embed, targets, prev_matches = previous
            losses["reid"] = weights.reid * reid_loss(embed, out.predictions.reid_embeddings, targets, batch.targets,
                                                      prev_matches, matches)
        for k, v in losses.items():
            total[k] = total.get(k, 0.0) + v / len(frames)
        latents, region_tokens = out.temporal_latents, out.region_tokens
        previous = (out.predictions.reid_embeddings, batch.targets, matches)
    return total


def save_checkpoint(directory: Path, model: HyperSeg, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """model.safetensors + optimizer.safetensors (tensors) + state.json (step, history, settings)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(directory / "model.safetensors"))
    model.config.to_json_file(str(directory / "config.json"))
    opt = optimizer.state_dict()
    tensors = {f"{i}.{k}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().contiguous().cpu()
               for i, s in opt["state"].items() for k, v in s.items()}
    save_file(tensors, str(directory / "optimizer.safetensors"))
    tmp = directory / "state.json.tmp"
    tmp.write_text(json.dumps({**state, "param_groups": opt["param_groups"]}))
    tmp.replace(directory / "state.json")


def load_checkpoint(directory: Path, model: HyperSeg, optimizer: torch.optim.Optimizer, device) -> dict:
    model.load_state_dict(load_file(str(directory / "model.safetensors"), device=str(device)))
    state = json.loads((directory / "state.json").read_text())
    per_param: dict[int, dict] = {}
    for name, tensor in load_file(str(directory / "optimizer.safetensors"), device=str(device)).items():
        index, key = name.split(".", 1)
        per_param.setdefault(int(index), {})[key] = tensor.cpu() if key == "step" else tensor
    optimizer.load_state_dict({"state": per_param, "param_groups": state.pop("param_groups")})
    return state


def plot_losses(history: list[dict], path: Path) -> None:
    """Loss curve PNG: total loss (EMA-smoothed) over steps, overall and per kind of batch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for kind in ["all"] + sorted({h["kind"] for h in history}):
        points = [(h["step"], h["loss"]) for h in history if kind == "all" or h["kind"] == kind]
        if len(points) < 2:
            continue
        steps, values = zip(*points)
        smooth, ema = [], values[0]
        for v in values:
            ema = 0.95 * ema + 0.05 * v
            smooth.append(ema)
        ax.plot(steps, smooth, label=kind, linewidth=2.0 if kind == "all" else 0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (EMA 0.95)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def export(model: HyperSeg, tokenizer, out: Path, max_shard_size: str | None = None) -> None:
    """A `load_model(out)` directory: config.json, model.safetensors (or shards of at most
    `max_shard_size` + model.safetensors.index.json), and the tokenizer files unless `tokenizer` is
    None. Written beside, then moved in file by file (os.replace), the weights before the index and
    config.json; weight files of an earlier export that the new one does not have are removed last."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hyperseg-export-") as tmp:
        staged = Path(tmp)
        model.save_pretrained(str(staged), safe_serialization=True,
                              **({"max_shard_size": max_shard_size} if max_shard_size else {}))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(staged))
        order = {WEIGHTS_INDEX: 1, "config.json": 2}
        names = sorted((p.name for p in staged.iterdir() if p.is_file()), key=lambda n: (order.get(n, 0), n))
        for name in names:
            part = out / f".{name}.part"
            shutil.copyfile(staged / name, part)
            os.replace(part, out / name)
    weights = [p for p in out.iterdir() if p.name == WEIGHTS_INDEX
               or (p.name.startswith("model") and p.name.endswith(".safetensors"))]
    for stale in weights:
        if stale.name not in names:
            stale.unlink()


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", default="small", choices=("small", "tiny"))
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--commands-per-scene", type=int, default=1,
                   help="commands drawn per scene (divides --batch-size); image-only passes run once per scene")
    p.add_argument("--init-from", default="",
                   help="from_pretrained model directory to start from (weights, sizes and tokenizer); "
                        "ignored when --resume finds a checkpoint")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=200, help="linear warm-up steps (fewer when starting from a model)")
    p.add_argument("--seed", type=int, default=0, help="model init and data seed (data: train split)")
    p.add_argument("--out", default="models/hyperseg-world", help="from_pretrained directory written at the end")
    p.add_argument("--checkpoint", default="out/train", help="resumable checkpoint directory")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="training-time budget over all resumed runs: the schedule decays over it and training stops at it")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--workers", type=int, default=0, help="DataLoader processes drawing the world")
    p.add_argument("--schedule", default="", help="share of steps per kind of batch, e.g. open_vocabulary=0.4 "
                   f"(kinds: {', '.join(SCHEDULE)})")
    p.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                   help="set a model config field, e.g. category_prompts=parallel (repeatable)")
    p.add_argument("--freeze", default="", help="comma-separated parameter-name prefixes left untrained, "
                   "e.g. pyramid_encoder,predictor.pixel_decoder")
    p.add_argument("--prefetch", type=int, default=4,
                   help="items each worker draws ahead (they wait in shared memory, /dev/shm)")
    p.add_argument("--amp", default="none", choices=("none", "bf16"),
                   help="autocast dtype of the forward pass (bf16 on CUDA; the losses stay float32)")
    p.add_argument("--export-every-minutes", type=float, default=0.0,
                   help="also write the --out directory every so many minutes of training (0 = only at the end)")
    p.add_argument("--max-shard-size", default="",
                   help="write --out as safetensors shards of at most this size (e.g. 15MB); '' = one file")
    p.add_argument("--export-tokenizer", action=argparse.BooleanOptionalAction, default=True,
                   help="write the tokenizer files into --out (off: copy them from the --init-from directory later)")
    args = p.parse_args(argv)
    schedule = parse_schedule(args.schedule)

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(args.seed)
    tokenizer = build_word_tokenizer(world_words())
    ckpt = Path(args.checkpoint)
    resuming = args.resume and (ckpt / "state.json").is_file()
    # A resumed run keeps the sizes it was started with, even if `--size`'s numbers changed since.
    if args.resume and (ckpt / "config.json").is_file():
        config = HyperSegConfig.from_pretrained(ckpt)
    elif args.init_from:
        config = HyperSegConfig.from_pretrained(args.init_from)
    else:
        config = HyperSegConfig.from_size(args.size, vocab_size=len(tokenizer))
    config.default_categories = list(SHAPES)  # the node's task before any command: every shape of the world
    apply_config_overrides(config, args.config)
    model = HyperSeg(config).to(device).train()
    fresh: set[str] = set()  # parameters the --init-from model lacks (a module added since): they learn faster
    if args.init_from:  # the model's own tokenizer: its embedding rows index that vocabulary
        tokenizer, fresh = initialise_from(model, Path(args.init_from), copy_weights=not resuming)
        if not resuming:
            print(f"initialised from {args.init_from}" + (f"; new: {len(fresh)} tensors" if fresh else ""))
    frozen = tuple(filter(None, args.freeze.split(",")))
    for name, param in model.named_parameters():
        param.requires_grad_(not name.startswith(frozen) if frozen else True)
    groups = []
    for is_fresh, scale in ((False, 1.0), (True, FRESH_LR_SCALE)):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and (n in fresh) == is_fresh]
        groups += [{"params": [p for _, p in named if p.ndim >= 2], "weight_decay": 0.05, "lr_scale": scale},
                   {"params": [p for _, p in named if p.ndim < 2], "weight_decay": 0.0, "lr_scale": scale}]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=args.lr, betas=(0.9, 0.999))
    state = {"step": 0, "history": [], "seconds": 0.0, "args": vars(args)}
    if resuming:
        state = load_checkpoint(ckpt, model, optimizer, device)
        print(f"resumed at step {state['step']} from {ckpt}")
    weights = LossWeights()
    shape_names = name_ids(tokenizer, world_names()) if config.mask_shape_size else None
    data = WorldBatches(tokenizer, config, args.batch_size, args.seed, args.commands_per_scene, schedule)
    start_step = state["step"]
    loader = torch.utils.data.DataLoader(data, batch_size=None, sampler=range(start_step, args.steps),
                                         num_workers=args.workers, collate_fn=lambda x: x,
                                         prefetch_factor=args.prefetch if args.workers else None,
                                         persistent_workers=False, worker_init_fn=_one_thread_worker)
    amp = torch.bfloat16 if args.amp == "bf16" else None
    out_dir, shard = Path(args.out), args.max_shard_size or None
    export_tokenizer = tokenizer if args.export_tokenizer else None
    meter = ThroughputMeter(device)
    run_info = {"device": str(device), "amp": args.amp, "batch_size": args.batch_size,
                "commands_per_scene": args.commands_per_scene, "workers": args.workers,
                "prefetch": args.prefetch if args.workers else None}

    def write_summary(extra: dict) -> dict:
        summary = {"steps": state["step"], "this_run_steps": state["step"] - start_step,
                   "seconds_total": round(state.get("seconds", 0.0), 1),
                   "seconds_per_step": round(state.get("seconds", 0.0) / max(state["step"], 1), 3),
                   "final_loss_ema": _ema([h["loss"] for h in state["history"]]), **run_info,
                   "throughput": meter.summary(), **extra}
        ckpt.mkdir(parents=True, exist_ok=True)
        (ckpt / "summary.json").write_text(json.dumps(summary, indent=1))
        return summary

    began = time.perf_counter()
    last_export = began
    bar = tqdm(loader, total=args.steps - start_step, initial=0, desc="train", dynamic_ncols=True)
    step = start_step
    for step, (kind, frames) in enumerate(bar, start=start_step):
        meter.arrived()
        # Progress is the share of steps done, or of the time budget when that runs out first.
        progress = step / args.steps
        if args.max_minutes:
            progress = max(progress, (state.get("seconds", 0.0) + time.perf_counter() - began) / (args.max_minutes * 60))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, progress, args.lr, args.warmup) * group.get("lr_scale", 1.0)
        losses = train_step(model, kind, frames, weights, device, args.commands_per_scene, amp, shape_names)
        loss = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        record = {"step": step, "kind": kind, "loss": loss.item(), **{k: float(v.detach()) for k, v in losses.items()}}
        meter.computed(sum(int(b.pyramid.shape[0]) for b in frames))  # loss.item() waited for the device
        state["history"].append(record)
        bar.set_postfix(kind=kind[:12], loss=f"{record['loss']:.3f}")
        elapsed = time.perf_counter() - began
        out_of_time = args.max_minutes and state.get("seconds", 0.0) + elapsed > args.max_minutes * 60
        if (step + 1) % args.save_every == 0 or step + 1 == args.steps or out_of_time:
            state.update(step=step + 1, seconds=state.get("seconds", 0.0) + elapsed)
            began = time.perf_counter()
            save_checkpoint(ckpt, model, optimizer, state)
        if (args.export_every_minutes and not out_of_time and step + 1 < args.steps
                and time.perf_counter() - last_export >= args.export_every_minutes * 60):
            export(model, export_tokenizer, out_dir, shard)  # a later kill still leaves these weights
            last_export = time.perf_counter()
            progress = write_summary({"steps": step + 1, "this_run_steps": step + 1 - start_step,
                                      "seconds_total": round(state.get("seconds", 0.0) + last_export - began, 1),
                                      "exported_at_step": step + 1, "final": False})
            print(f"exported step {step + 1} to {out_dir}: {json.dumps(progress['throughput'])}", flush=True)
        meter.resume()
        if out_of_time:
            break
    bar.close()
    state["step"] = min(step + 1, args.steps) if args.steps > start_step else start_step
    plot_losses(state["history"], ckpt / "loss_curve.png")
    model.eval()
    export(model, export_tokenizer, out_dir, shard)
    summary = write_summary({"exported_at_step": state["step"], "final": True})
    print(json.dumps(summary))
    return summary


def _one_thread_worker(worker_id: int) -> None:
    """DataLoader workers draw the world with one OpenCV thread each (torch already uses one there)."""
    import cv2

    cv2.setNumThreads(1)


def _ema(values: list[float], decay: float = 0.98) -> float | None:
    if not values:
        return None
    ema = values[0]
    for v in values:
        ema = decay * ema + (1 - decay) * v
    return round(ema, 4)


if __name__ == "__main__":
    main()
