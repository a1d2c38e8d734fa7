#!/usr/bin/env python3
"""CPU seconds per training sample of train.py's step (forward, losses, backward, optimizer; data
drawn in the same process and counted), for several batch settings measured interleaved, printed
as JSON. A sample is one command on one image, or one command through a clip.

    .venv/bin/python -P scripts/bench_train.py [--model models/hyperseg-world] [--steps 16] [--threads 1]
        [--settings 4x1 16x4 16x8]     # batch size x commands per scene

Each setting trains its own copy of the model on the same steps (the same kinds of batch, in turn
setting by setting), so a shared, loaded machine slows every setting alike. Process CPU time is
the figure to compare; wall time is printed too.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hyperseg_ros

import torch  # noqa: E402

from hyperseg_ros.model import load_model  # noqa: E402
from hyperseg_ros.training.losses import LossWeights  # noqa: E402
from hyperseg_ros.training.train import WorldBatches, train_step  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="models/hyperseg-world")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--first-step", type=int, default=50_000, help="data steps used (the same for every setting)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--settings", nargs="+", default=["4x1", "16x4", "16x8"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    base, tokenizer = load_model(args.model)
    runs = {}
    for name in args.settings:
        batch, per = (int(x) for x in name.split("x"))
        model = copy.deepcopy(base).train()
        runs[name] = dict(model=model, per=per, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-5),
                          data=WorldBatches(tokenizer, model.config, batch, 0, per), cpu={}, wall={}, samples={})
    weights = LossWeights()
    for step in range(args.first_step, args.first_step + args.steps):
        for run in runs.values():
            cpu, wall = time.process_time(), time.perf_counter()
            kind, frames = run["data"][step]
            loss = sum(train_step(run["model"], kind, frames, weights, "cpu", run["per"]).values())
            run["optimizer"].zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(run["model"].parameters(), 1.0)
            run["optimizer"].step()
            group = "clip" if kind.startswith("clip:") else "image"
            run["cpu"][group] = run["cpu"].get(group, 0.0) + time.process_time() - cpu
            run["wall"][group] = run["wall"].get(group, 0.0) + time.perf_counter() - wall
            run["samples"][group] = run["samples"].get(group, 0) + frames[0].pyramid.shape[0]
    report = {}
    for name, run in runs.items():
        samples = sum(run["samples"].values())
        report[name] = {
            "cpu_s_per_sample": round(sum(run["cpu"].values()) / samples, 4),
            "wall_s_per_sample": round(sum(run["wall"].values()) / samples, 4),
            **{f"cpu_s_per_{g}_sample": round(run["cpu"][g] / run["samples"][g], 4) for g in run["samples"]},
            "samples": samples}
    first = report[args.settings[0]]["cpu_s_per_sample"]
    for name in report:
        report[name]["speedup_vs_" + args.settings[0]] = round(first / report[name]["cpu_s_per_sample"], 2)
    print(json.dumps({"steps": args.steps, "threads": args.threads, "settings": report}, indent=1))


if __name__ == "__main__":
    main()
