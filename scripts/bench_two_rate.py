#!/usr/bin/env python3
"""Two rates (the language side every n frames): J&F, identity switches and ms per frame for each n, as JSON.

1. `shipped`: the model directory (default: the embedded model) on world clips of one split,
   scored by training/evaluate.py's clip evaluation: referring J&F, visual prompt (box) J&F,
   open-vocabulary identity switches per 100 frames, ms per frame, share of frames with a language
   pass. Each clip runs for every n back to back, so the machine's load hits every n alike; J&F
   differences to n = 1 are paired per clip (mean and standard error). Frame 0 always has the
   language pass, so a difference without it is the difference x frames / (frames - 1).
2. `3b`: the released architecture with random weights (on CPU at a reduced input size, see
   --pyramid-size / --vision-size) on a 640x480 stream, in one session run: the mean time of a
   frame with the language pass (L) and of one without (S); a window of n frames holds one of the
   first and n - 1 of the second, so ms per frame at n is (L + (n - 1) S) / n. Random weights give
   random scores, so low-score re-runs are off there (part 1 measures how often they happen).

    .venv/bin/python -P scripts/bench_two_rate.py [--clips 32] [--workers 2] [--ns 1,2,4,8] [--skip-3b]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hyperseg_ros

import numpy as np  # noqa: E402
import torch  # noqa: E402

from hyperseg_ros.command import Command  # noqa: E402
from hyperseg_ros.model import load_model  # noqa: E402
from hyperseg_ros.model.session import LLM_RERUN_SCORE_THRESHOLD, SegmentationSession  # noqa: E402
from hyperseg_ros.training.evaluate import Evaluation  # noqa: E402

STREAMS = ("clip_referring", "clip_open_vocabulary", "clip_visual_prompt_box", "clip_visual_prompt_point")
SWITCH_STREAM = "clip_open_vocabulary"  # scored by identity switches, the others by J&F


def _mean_se(values: list[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
    return {"mean": round(float(arr.mean()), 4), "se": round(se, 4)}


class CountingSession(SegmentationSession):
    """A session that also counts its language passes."""

    language_passes = 0

    def process(self, image_rgb):
        result = super().process(image_rgb)
        self.language_passes += result.language_pass
        return result


def _clips_worker(model_dir: str, ns: list[int], split: str, clip_ids: list[int], frames: int, rerun: float,
                  streams: list[str], threads: int, score_threshold: float) -> dict:
    """Every clip of `clip_ids` for every n (back to back, so load changes hit every n alike)."""
    torch.set_num_threads(threads)
    model, tokenizer = load_model(model_dir)
    raw = {n: {"jf": {s: [] for s in streams}, "switches": 0, "switch_frames": 0, "frame_ms": [],
               "language_passes": 0} for n in ns}
    for i in clip_ids:
        for stream in streams:
            for n in ns:
                # J&F streams at `score_threshold` (0: always the top-1 mask, as released); switches at the default
                threshold = 0.5 if stream == SWITCH_STREAM else score_threshold
                session = CountingSession(model, tokenizer, score_threshold=threshold, llm_every_n_frames=n,
                                          llm_rerun_score_threshold=rerun)
                ev = Evaluation(session, split, offset=i)
                clip = ev.clips(stream, 1, frames)
                raw[n]["language_passes"] += session.language_passes
                raw[n]["frame_ms"] += ev.frame_ms
                if stream == SWITCH_STREAM:
                    raw[n]["switches"] += sum(clip["switches"])
                    raw[n]["switch_frames"] += sum(clip["frames"])
                else:
                    raw[n]["jf"][stream] += clip["jf"]
        print(f"clip {i} done", file=sys.stderr, flush=True)
    return raw


def shipped(model_dir: str, ns: list[int], split: str, clips: int, frames: int, rerun: float,
            streams: list[str], workers: int, threads: int, score_threshold: float) -> dict:
    shards = [list(range(clips))[k::workers] for k in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(pool.map(_clips_worker, *zip(*[(model_dir, ns, split, shard, frames, rerun, streams, threads,
                                                      score_threshold)
                                                     for shard in shards])))
    jf_streams = [s for s in streams if s != SWITCH_STREAM]
    base = ns[0]

    def merged(n, key):
        return [v for part in parts for v in part[n][key]]

    def jf(n, stream):  # clip order: shard by shard, the same for every n
        return [v for part in parts for v in part[n]["jf"][stream]]

    frame_ms_base = merged(base, "frame_ms")
    out = {}
    for n in ns:
        frame_ms = merged(n, "frame_ms")
        row = {"frames": len(frame_ms),
               "language_pass_share": round(sum(p[n]["language_passes"] for p in parts) / len(frame_ms), 4),
               "ms_per_frame_mean": round(float(np.mean(frame_ms)), 2),
               "ms_per_frame_median": round(float(np.median(frame_ms)), 2),
               "ms_per_frame_ratio_to_n1": round(float(np.mean(frame_ms) / np.mean(frame_ms_base)), 3)}
        if SWITCH_STREAM in streams:
            switch_frames = sum(p[n]["switch_frames"] for p in parts)
            row["id_switches"] = sum(p[n]["switches"] for p in parts)
            row["id_switches_per_100_frames"] = round(100.0 * row["id_switches"] / max(switch_frames, 1), 3)
        for stream in jf_streams:
            key = stream.removeprefix("clip_")
            row[f"{key}_jf"] = _mean_se(jf(n, stream))
            delta = [a - b for a, b in zip(jf(n, stream), jf(base, stream))]
            row[f"{key}_jf_minus_n{base}"] = _mean_se(delta)
            row[f"{key}_jf_minus_n{base}_without_prompt_frame"] = round(float(np.mean(delta)) * frames / (frames - 1), 4)
        out[str(n)] = row
    return out


def random_model(config, dtype: torch.dtype, device: str = "cpu"):
    """HyperSeg of `config` with random weights, built without the modules' own (slow, for 3b on a
    CPU) initialisation: matrices ~ N(0, 0.02), norm weights 1, biases 0."""
    from transformers.initialization import no_init_weights

    from hyperseg_ros.model.hyperseg import HyperSeg

    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    try:
        with no_init_weights(), torch.device(device):
            model = HyperSeg(config).eval()
    finally:
        torch.set_default_dtype(torch.float32)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1 or not name.endswith(("weight", "bias")):
                param.normal_(0.0, 0.02)
            else:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
    return model


def three_b(ns: list[int], pyramid_size: int, vision_size: int, frames: int, window: int, dtype: torch.dtype) -> dict:
    """One session with llm_every_n_frames=window over `frames` frames; a window of n frames is one
    language frame and n - 1 segmentation frames, so ms per frame at n = (L + (n - 1) S) / n with
    L, S the measured mean times of the two kinds of frame (re-runs off: scores are random)."""
    from hyperseg_ros.model.config import HyperSegConfig
    from hyperseg_ros.model.tokenizer import build_word_tokenizer

    text = "the small red circle on the left"
    tokenizer = build_word_tokenizer([text])
    config = HyperSegConfig.from_size("3b", pyramid_image_size=pyramid_size, vision_image_size=vision_size)
    model = random_model(config, dtype)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    session = SegmentationSession(model, tokenizer, score_threshold=0.0, llm_every_n_frames=window,
                                  llm_rerun_score_threshold=0.0)
    session.set_command(Command("referring", text))
    stages: dict[str, dict[str, list[float]]] = {"language_frame": {}, "segmentation_frame": {}}
    for i in range(frames):
        result = session.process(np.roll(base, 4 * i, axis=1))
        kind = "language_frame" if result.language_pass else "segmentation_frame"
        for name, ms in result.timings_ms.items():
            stages[kind].setdefault(name, []).append(ms)
        print(f"3b frame {i}: {kind} {result.timings_ms['total']:.0f} ms", file=sys.stderr, flush=True)
    full = statistics.mean(stages["language_frame"]["total"])
    seg = statistics.mean(stages["segmentation_frame"]["total"])
    per_frame = {n: (full + (n - 1) * seg) / n for n in ns}
    return {
        "config": "3b", "weights": "random", "dtype": str(dtype).removeprefix("torch."),
        "pyramid_image_size": pyramid_size, "vision_image_size": vision_size, "image": "640x480",
        "tokens": int(session._tokens.input_ids.shape[1]),
        "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "frames": {kind: len(d.get("total", [])) for kind, d in stages.items()},
        "mean_stage_ms": {kind: {k: round(statistics.mean(v), 1) for k, v in d.items()} for kind, d in stages.items()},
        "ms_per_frame": {str(n): round(v, 1) for n, v in per_frame.items()},
        "ms_per_frame_ratio_to_n1": {str(n): round(v / per_frame[ns[0]], 3) for n, v in per_frame.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="model directory of part 1 ('' = the embedded model)")
    parser.add_argument("--ns", default="1,2,4,8", help="values of llm_every_n_frames (the first is the baseline)")
    parser.add_argument("--split", default="val", choices=("val", "test", "shifted", "fresh"))
    parser.add_argument("--clips", type=int, default=32, help="clips per video task")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--rerun-score", type=float, default=LLM_RERUN_SCORE_THRESHOLD,
                        help="llm_rerun_score_threshold of part 1")
    parser.add_argument("--streams", default="clip_referring,clip_open_vocabulary",
                        help=f"clip streams of part 1, among {', '.join(STREAMS)}")
    parser.add_argument("--score-threshold", type=float, default=0.0,
                        help="score_threshold of the J&F streams (0 = always the top-1 mask, as released)")
    parser.add_argument("--workers", type=int, default=1, help="part 1: processes sharing the clips")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--skip-shipped", action="store_true")
    parser.add_argument("--skip-3b", action="store_true")
    parser.add_argument("--pyramid-size", type=int, default=384, help="3b: Swin input (released: 1024)")
    parser.add_argument("--vision-size", type=int, default=112, help="3b: SigLIP input (released: 384)")
    parser.add_argument("--frames-3b", type=int, default=3, help="3b: frames of the measured session")
    parser.add_argument("--window", type=int, default=2, help="3b: llm_every_n_frames of the measured session")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"), help="3b weights")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ns = [int(n) for n in args.ns.split(",")]
    report = {"benchmark": "two_rate", "threads": args.threads, "cpu_count": os.cpu_count(),
              "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    if not args.skip_shipped:
        report["shipped"] = {"model": args.model or "embedded", "split": args.split, "clips_per_task": args.clips,
                             "frames_per_clip": args.frames, "image": "320x240",
                             "llm_rerun_score_threshold": args.rerun_score,
                             "workers": args.workers, "score_threshold_jf": args.score_threshold,
                             "n": shipped(args.model, ns, args.split, args.clips, args.frames, args.rerun_score,
                                          args.streams.split(","), args.workers, args.threads,
                                          args.score_threshold)}
        report["load_average_after_shipped"] = [round(x, 2) for x in os.getloadavg()]
    if not args.skip_3b:
        report["3b_cpu"] = three_b(ns, args.pyramid_size, args.vision_size, args.frames_3b, args.window,
                                   getattr(torch, args.dtype))
        report["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
