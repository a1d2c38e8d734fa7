#!/usr/bin/env python3
"""Per-stage time of HyperSeg through SegmentationSession, printed as JSON (medians, ms).

Two passes per task: `full_pass` (every frame runs the language side: SigLIP, FVP, Phi, entity
recognition, then the predictor) and `per_frame_pass` (the frames between two language passes:
pyramid encoder + predictor seeded with the cached E_Q / E_P; see `llm_every_n_frames`). Plus the
peak memory (CUDA: allocated by torch; CPU: the process's peak resident set).

By default it times the shipped model (models/hyperseg-world) on CPU; `--size` times an
architecture with random weights instead (random weights cost the same as trained ones; scores are
forced through with threshold 0 so that post-processing does its full work):

    .venv/bin/python -P scripts/bench_model.py                        # the shipped model, CPU
    .venv/bin/python -P scripts/bench_model.py --size 3b --device cuda --dtype bfloat16
    .venv/bin/python -P scripts/bench_model.py --size 3b --pyramid-size 384 --vision-size 112  # 3b on CPU

float16 is not offered: this transformers' Phi computes attention scores in the input dtype and
Phi-2 overflows float16 there (NaN); use bfloat16 on CUDA.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hyperseg_ros

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hyperseg_ros.command import Command  # noqa: E402
from hyperseg_ros.model import load_model  # noqa: E402
from hyperseg_ros.model.config import HyperSegConfig  # noqa: E402
from hyperseg_ros.model.hyperseg import HyperSeg  # noqa: E402
from hyperseg_ros.model.session import SegmentationSession  # noqa: E402
from hyperseg_ros.model.tokenizer import build_word_tokenizer  # noqa: E402

COMMANDS = {
    "referring": Command("referring", "the small red circle on the left"),
    "open_vocabulary": Command("open_vocabulary", categories=("red circle", "star", "blue", "square", "ring",
                                                             "yellow heart", "cross", "triangle")),
    "visual_prompt": Command("visual_prompt", boxes=((100.0, 80.0, 120.0, 90.0),), points=((400.0, 300.0),)),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _frames(count: int, height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, 4 * i, axis=1) for i in range(count)]


def _medians(model, tokenizer, command: Command, frames: list[np.ndarray], every_n: int, warmup: int) -> dict:
    """Median ms per stage over the frames (after `warmup`) of the kind `every_n` selects: 1 = every
    frame has the language pass; larger = only the frames without it."""
    session = SegmentationSession(model, tokenizer, score_threshold=0.0, max_instances=20,
                                  llm_every_n_frames=every_n, llm_rerun_score_threshold=0.0)
    session.set_command(command)
    stages: dict[str, list[float]] = {}
    for i, image in enumerate(frames):
        start = time.perf_counter()
        result = session.process(image)
        if model.device.type == "cuda":
            torch.cuda.synchronize(model.device)
        wall = (time.perf_counter() - start) * 1e3
        if i >= warmup and result.language_pass == (every_n == 1):
            for name, ms in {**result.timings_ms, "wall": wall}.items():
                stages.setdefault(name, []).append(ms)
    report = {name: round(statistics.median(v), 2) for name, v in stages.items()}
    report["frames"] = len(stages.get("wall", []))
    # on a shared CPU the median absorbs other processes' load; the sum of per-stage minima does not
    report["sum_of_stage_minima"] = round(sum(min(v) for k, v in stages.items() if k not in ("total", "wall")), 2)
    return report


def build(args) -> tuple[HyperSeg, object, str]:
    """-> (model on device/dtype, tokenizer, description)."""
    dtype = DTYPES[args.dtype]
    if args.size is None:
        model, tokenizer = load_model(args.model, device=args.device, dtype=dtype)
        return model, tokenizer, args.model or "embedded:hyperseg-world"
    texts = [c.text for c in COMMANDS.values()] + list(COMMANDS["open_vocabulary"].categories)
    tokenizer = build_word_tokenizer(texts)
    overrides = {k: v for k, v in (("pyramid_image_size", args.pyramid_size),
                                   ("vision_image_size", args.vision_size)) if v}
    if args.size != "3b":  # the 3b embedding keeps its released rows; the word tokenizer's ids fit
        overrides["vocab_size"] = len(tokenizer)
    config = HyperSegConfig.from_size(args.size, **overrides)
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    try:
        with torch.device(args.device):
            model = HyperSeg(config).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    return model, tokenizer, f"{args.size} (random weights)"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model directory ('' = the shipped model); ignored with --size")
    parser.add_argument("--size", choices=("3b", "small", "tiny"), help="an architecture with random weights")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    parser.add_argument("--pyramid-size", type=int, default=0, help="Swin input side (0 = the size's own)")
    parser.add_argument("--vision-size", type=int, default=0, help="SigLIP input side (0 = the size's own)")
    parser.add_argument("--tasks", default=",".join(COMMANDS), help="comma-separated tasks")
    parser.add_argument("--frames", type=int, default=20, help="frames per task and pass")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tokenizer, name = build(args)
    device = model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    frames = _frames(args.frames, args.height, args.width)
    full, per_frame = {}, {}
    for task in args.tasks.split(","):
        command = COMMANDS[task]
        full[task] = _medians(model, tokenizer, command, frames, 1, args.warmup)
        # a language pass every len(frames) frames: all the others run the segmentation side only
        per_frame[task] = _medians(model, tokenizer, command, frames, len(frames), args.warmup)
    report = {
        "model": name, "device": str(device), "dtype": args.dtype,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": args.threads if device.type == "cpu" else None,
        "image": f"{args.width}x{args.height}",
        "pyramid_image_size": model.config.pyramid_image_size, "vision_image_size": model.config.vision_image_size,
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "median_ms": {"full_pass": full, "per_frame_pass": per_frame},
    }
    if device.type == "cuda":
        report["peak_memory_MiB"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    else:  # ru_maxrss is KiB on Linux
        report["peak_rss_MiB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
