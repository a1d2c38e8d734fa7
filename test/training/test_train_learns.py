"""The training loop learns: one small batch, seen again on every step, is overfitted.

The other training tests compare runs with each other (a resumed run with a straight one, lr 0 with
its start), which holds just as well for weights that never move; this one needs the loss to fall.
"""
import json

import torch

from hyperseg_ros.training import train

STEPS = 30
FALL = 0.35  # the loss of the last steps must be at least 35% below the first step's (measured: ~52%)


def test_the_loop_overfits_one_small_batch(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    first: dict = {}
    draw = train.WorldBatches.__getitem__

    def same_batch(self, step):  # step 0's (kind, frames) on every step
        if "item" not in first:
            first["item"] = draw(self, 0)
        return first["item"]

    monkeypatch.setattr(train.WorldBatches, "__getitem__", same_batch)
    train.main(["--size", "tiny", "--steps", str(STEPS), "--batch-size", "2", "--threads", "1",
                "--lr", "1e-3", "--warmup", "1", "--save-every", str(STEPS),
                "--checkpoint", str(tmp_path / "ckpt"), "--out", str(tmp_path / "model")])
    losses = [h["loss"] for h in json.loads((tmp_path / "ckpt" / "state.json").read_text())["history"]]
    assert len(losses) == STEPS and all(map(torch.isfinite, torch.tensor(losses)))
    last = sum(losses[-3:]) / 3
    assert last <= (1 - FALL) * losses[0], f"loss {losses[0]:.2f} -> {last:.2f}: {[round(v, 2) for v in losses]}"
