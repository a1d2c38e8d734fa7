#!/usr/bin/env python3
"""Per-stage time of one frame through SegmentationSession, printed as JSON (medians, ms).

CPU: the `small` (embedded) architecture with random weights at 640x480, `--threads` threads
(the node's budget is <= ~60 ms per frame on 2 cores). On a CPU shared with other jobs, 2 threads
can stall on each other; `--threads 1` then gives the steadier upper bound. CUDA, when available: the released `3b`
architecture in bf16 with random weights. Random weights give the true cost of every stage
(scores are forced through with threshold 0 so that post-processing does its full work).

    .venv/bin/python -P scripts/bench_model.py [--frames 30] [--threads 2] [--no-cuda]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hyperseg_ros

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hyperseg_ros.command import Command  # noqa: E402
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


def _frames(count: int, height: int = 480, width: int = 640) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return [np.roll(base, 4 * i, axis=1) for i in range(count)]


def bench(model: HyperSeg, tokenizer, frames: list[np.ndarray], warmup: int = 3) -> dict:
    report = {}
    for task, command in COMMANDS.items():
        session = SegmentationSession(model, tokenizer, score_threshold=0.0, max_instances=20)
        session.set_command(command)
        stages: dict[str, list[float]] = {}
        for i, image in enumerate(frames):
            start = time.perf_counter()
            result = session.process(image)
            wall = (time.perf_counter() - start) * 1e3
            if i >= warmup:
                for name, ms in {**result.timings_ms, "wall": wall}.items():
                    stages.setdefault(name, []).append(ms)
        report[task] = {name: round(statistics.median(v), 2) for name, v in stages.items()}
        report[task]["fps"] = round(1e3 / report[task]["wall"], 1)
        # on a shared CPU the median absorbs other processes' load; the sum of per-stage minima does not
        report[task]["sum_of_stage_minima"] = round(sum(min(v) for k, v in stages.items() if k not in ("total", "wall")), 2)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-cuda", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    tokenizer = build_word_tokenizer([c.text for c in COMMANDS.values()] + list(COMMANDS["open_vocabulary"].categories))

    torch.set_num_threads(args.threads)
    small = HyperSeg(HyperSegConfig.from_size("small", vocab_size=len(tokenizer))).eval()
    result = {
        "small_cpu": {
            "threads": args.threads,
            "image": "640x480",
            "params_M": round(sum(p.numel() for p in small.parameters()) / 1e6, 2),
            "median_ms": bench(small, tokenizer, _frames(args.frames)),
        }
    }
    if torch.cuda.is_available() and not args.no_cuda:
        config = HyperSegConfig.from_size("3b")
        torch.set_default_dtype(torch.bfloat16)
        with torch.device("cuda"):
            big = HyperSeg(config).eval()
        torch.set_default_dtype(torch.float32)
        result["3b_cuda_bf16"] = {
            "device": torch.cuda.get_device_name(),
            "image": "640x480",
            "params_M": round(sum(p.numel() for p in big.parameters()) / 1e6, 1),
            "median_ms": bench(big, tokenizer, _frames(min(args.frames, 15))),
            "peak_memory_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
