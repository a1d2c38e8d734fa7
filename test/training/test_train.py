"""Training loop on the tiny config: loss is finite, resume is exact, the export loads."""
import json

import torch
from safetensors.torch import load_file

from hyperseg_ros.model import load_model
from hyperseg_ros.training.train import SCHEDULE, learning_rate, main, step_kind


def _args(tmp, name, steps, extra=()):
    return ["--size", "tiny", "--steps", str(steps), "--batch-size", "2", "--threads", "1", "--save-every", "1",
            "--checkpoint", str(tmp / name / "ckpt"), "--out", str(tmp / name / "model"), *extra]


def test_two_runs_with_a_resume_equal_one_run_and_export_loads(tmp_path):
    straight = main(_args(tmp_path, "a", 3))
    main(_args(tmp_path, "b", 2))
    resumed = main(_args(tmp_path, "b", 3, ["--resume"]))
    assert straight["steps"] == resumed["steps"] == 3 and resumed["this_run_steps"] == 1
    wa = load_file(str(tmp_path / "a" / "ckpt" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "ckpt" / "model.safetensors"))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    state = json.loads((tmp_path / "a" / "ckpt" / "state.json").read_text())
    assert [h["step"] for h in state["history"]] == [0, 1, 2]
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in state["history"])
    assert (tmp_path / "a" / "ckpt" / "loss_curve.png").stat().st_size > 1000
    model, tokenizer = load_model(str(tmp_path / "a" / "model"))
    assert model.config.llm_config["vocab_size"] == len(tokenizer)
    exported = {k: v for k, v in model.state_dict().items()}
    assert torch.allclose(exported["seg_query"], wa["seg_query"])


def test_schedule_covers_every_kind_and_lr_decays():
    kinds = {step_kind(s, 0) for s in range(400)}
    assert kinds == set(SCHEDULE)
    assert learning_rate(0, 0.0, 1e-3) < learning_rate(199, 0.0, 1e-3)
    assert learning_rate(500, 0.1, 1e-3) > learning_rate(500, 0.9, 1e-3) >= 0.05e-3
