"""CPU cost of engine whisper per utterance, on random weights in the shape of a released checkpoint.

The arithmetic does not depend on the weights' values, so nothing is downloaded; the accuracy is
not measured here (scripts/bench_speech.py --engine whisper does that with a real checkpoint).
Random weights seldom end a sentence, so each beam is held to --tokens tokens (a spoken command
is about 10). JSON: parameters, fp32 weight size, and per-utterance milliseconds (median).

    python -P scripts/whisper_cost.py --shape tiny.en base.en --threads 1
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "test"))  # the tests' checkpoint builder
from tiny_whisper import save_tiny_whisper  # noqa: E402

from hyperseg_ros.speech.whisper import WhisperRecognizer  # noqa: E402

# The config.json fields that differ between the released English-only checkpoints
SHAPES = {
    "tiny.en": dict(d_model=384, encoder_layers=4, decoder_layers=4, encoder_attention_heads=6,
                    decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536),
    "base.en": dict(d_model=512, encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                    decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048),
}
COMMON = dict(vocab_size=51864, max_target_positions=448)


def measure(shape: str, beams: list[int], tokens: int, seconds: float, runs: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        path = save_tiny_whisper(Path(d) / shape, multilingual=False, **SHAPES[shape], **COMMON)
        t0 = time.perf_counter()
        rec = WhisperRecognizer(str(path), max_new_tokens=tokens)
        load_s = time.perf_counter() - t0
    x = (0.1 * np.random.default_rng(0).standard_normal(int(16000 * seconds))).astype(np.float32)
    out = dict(shape=shape, parameters_m=round(sum(p.numel() for p in rec.model.parameters()) / 1e6, 1),
               weights_mb_fp32=round(sum(p.numel() for p in rec.model.parameters()) * 4 / 1e6),
               load_s=round(load_s, 2), utterance_s=seconds, tokens_per_beam=tokens)
    for n in beams:
        rec.num_beams = n
        rec.recognize(x)  # warm-up
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            rec.recognize(x)
            times.append((time.perf_counter() - t0) * 1000)
        out[f"ms_per_utterance_beams_{n}"] = round(float(np.median(times)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--beams", nargs="+", type=int, default=[2, 4, 1], help="2: the engine's default; 1: greedy")
    ap.add_argument("--tokens", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=2.0, help="utterance length (Whisper pads every one to 30 s)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    reports = [measure(s, args.beams, args.tokens, args.seconds, args.runs) for s in args.shape]
    print(json.dumps(dict(threads=args.threads, torch=torch.__version__, reports=reports), indent=1))


if __name__ == "__main__":
    main()
