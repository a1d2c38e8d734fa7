"""Sweep the model's latent_handoff_momentum: first-frame agreement on still streams and, optionally,
the video metrics, through `Evaluation` at the node's default session parameters.

    OMP_NUM_THREADS=1 python -P scripts/sweep_handoff.py --momentum 0 0.3 0.5 0.7 --splits val test shifted \
        --still-tasks referring --clips 32
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from hyperseg_ros.model import load_model
from hyperseg_ros.model.session import SegmentationSession
from hyperseg_ros.training.evaluate import STILL_TASKS, Evaluation, same_answer
from hyperseg_ros.world.commands import sample_command


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="")
    p.add_argument("--momentum", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7])
    p.add_argument("--splits", nargs="+", default=["val", "test", "shifted"])
    p.add_argument("--still", type=int, default=50)
    p.add_argument("--still-tasks", nargs="+", default=["referring"], choices=STILL_TASKS)
    p.add_argument("--clips", type=int, default=0, help="clips per video task on --clip-split (0 = none)")
    p.add_argument("--clip-tasks", nargs="+", default=["clip_referring", "clip_open_vocabulary"])
    p.add_argument("--clip-split", default="val")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--referring", type=int, default=0, help="referring stills for cIoU on --clip-split (0 = none)")
    p.add_argument("--long", type=int, default=0,
                   help="frames of a long still stream on --clip-split: does every frame agree with the first? (0 = none)")
    p.add_argument("--out", default="")
    args = p.parse_args()
    torch.set_num_threads(1)
    model, tokenizer = load_model(args.model)
    rows = []
    for m in args.momentum:
        model.config.latent_handoff_momentum = m
        row: dict = {"momentum": m}
        for split in args.splits:
            for task in args.still_tasks:
                t = time.perf_counter()
                agree = Evaluation(SegmentationSession(model, tokenizer), split, 0).still_streams(task, args.still)
                row[f"{split}_still_{task}"] = [int(np.sum(agree)), len(agree)]
                print(f"m={m} {split} still {task}: {np.sum(agree)}/{len(agree)} = {np.mean(agree):.3f} "
                      f"({time.perf_counter() - t:.0f} s)", flush=True)
        if args.long:
            t = time.perf_counter()
            ev = Evaluation(SegmentationSession(model, tokenizer), args.clip_split, 0)
            every, fifth = [], []
            for i in range(args.still):
                rng, scene = ev._scene("still_referring", i)
                wc = sample_command(rng, scene, "referring", no_match_rate=0.0)
                results = ev.predict([scene] * args.long, wc)
                if any(results):
                    every.append(all(same_answer(results[0], r) for r in results[1:]))
                    fifth.append(same_answer(results[0], results[4]))
            row["long_still_referring"] = [int(np.sum(every)), len(every)]
            print(f"m={m} {args.clip_split} long still referring ({args.long} frames): all agree {np.sum(every)}/"
                  f"{len(every)}, frame 5 {np.sum(fifth)}/{len(fifth)} ({time.perf_counter() - t:.0f} s)", flush=True)
        if args.clips:
            ev = Evaluation(SegmentationSession(model, tokenizer), args.clip_split, 0)
            for stream in args.clip_tasks:
                t = time.perf_counter()
                r = ev.clips(stream, args.clips, args.frames)
                if stream == "clip_open_vocabulary":
                    sw, fr = np.sum(r["switches"]), np.sum(r["frames"])
                    row["id_switches_per_100_frames"] = 100 * sw / max(fr, 1)
                    row["id_coverage"] = float(np.sum(r["matched"]) / np.sum(r["truth"]))
                    row["ov_switches_per_clip"] = [int(x) for x in r["switches"]]
                else:
                    row[f"{stream}_jf"] = float(np.mean(r["jf"]))
                    row[f"{stream}_jf_per_clip"] = [float(x) for x in r["jf"]]
                print(f"m={m} {args.clip_split} {stream}: "
                      + json.dumps({k: v for k, v in row.items() if not k.endswith("clip") and "per_clip" not in k
                                    and not k.startswith(tuple(args.splits))})
                      + f" ({time.perf_counter() - t:.0f} s)", flush=True)
        if args.referring:
            t = time.perf_counter()
            r = Evaluation(SegmentationSession(model, tokenizer), args.clip_split, 0).text_task("referring", args.referring)
            row["referring_ciou"] = float(r["all"].ciou)
            print(f"m={m} {args.clip_split} referring cIoU {r['all'].ciou:.4f} ({time.perf_counter() - t:.0f} s)",
                  flush=True)
        rows.append(row)
        if args.out:
            with open(args.out, "w") as f:
                json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
