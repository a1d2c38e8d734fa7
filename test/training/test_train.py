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


def test_shared_image_passes_give_the_losses_and_gradients_of_the_unshared_pass():
    from hyperseg_ros.model.config import HyperSegConfig
    from hyperseg_ros.model.hyperseg import HyperSeg
    from hyperseg_ros.model.tokenizer import build_word_tokenizer
    from hyperseg_ros.training.dataset import clip_batches, image_batch
    from hyperseg_ros.training.losses import LossWeights
    from hyperseg_ros.training.train import train_step
    from hyperseg_ros.world.vocabulary import world_words

    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(world_words())
    model = HyperSeg(HyperSegConfig.from_size("tiny", vocab_size=len(tokenizer))).train()
    items = [("visual_prompt", [image_batch(5, 4, "visual_prompt", tokenizer, model.config, commands_per_scene=2)]),
             ("clip:referring", clip_batches(5, 4, "referring", tokenizer, model.config, commands_per_scene=2))]
    for kind, frames in items:
        assert torch.equal(frames[0].pyramid[0], frames[0].pyramid[1])  # a scene's commands are adjacent
        results = []
        for repeats in (1, 2):
            model.zero_grad()
            losses = train_step(model, kind, frames, LossWeights(), "cpu", repeats)
            sum(losses.values()).backward()
            results.append(({k: v.item() for k, v in losses.items()},
                            {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
        (plain, plain_grads), (shared, shared_grads) = results
        assert plain.keys() == shared.keys() and all(abs(plain[k] - shared[k]) < 1e-4 * (1 + abs(plain[k])) for k in plain)
        assert plain_grads.keys() == shared_grads.keys()
        assert any(n.startswith("pyramid_encoder") for n in shared_grads)  # the shared modules still learn
        for n in plain_grads:  # equal up to float summation order (relative to each tensor's norm)
            assert (plain_grads[n] - shared_grads[n]).norm() <= 1e-3 * plain_grads[n].norm() + 1e-6, n


def test_init_from_starts_at_the_given_weights(tmp_path):
    main(_args(tmp_path, "a", 1))
    # lr 0: the one step leaves the weights where --init-from put them; 2 commands per scene on the way
    main(_args(tmp_path, "b", 1, ["--init-from", str(tmp_path / "a" / "model"), "--lr", "0", "--warmup", "1",
                                  "--commands-per-scene", "2"]))
    start = load_file(str(tmp_path / "a" / "ckpt" / "model.safetensors"))
    after = load_file(str(tmp_path / "b" / "ckpt" / "model.safetensors"))
    assert start.keys() == after.keys() and all(torch.equal(start[k], after[k]) for k in start)


def test_bf16_steps_export_shards_without_tokenizer_and_report_throughput(tmp_path):
    from hyperseg_ros.model.tokenizer import build_word_tokenizer
    from hyperseg_ros.world.vocabulary import world_words

    summary = main(_args(tmp_path, "a", 2, ["--amp", "bf16", "--max-shard-size", "100KB", "--no-export-tokenizer",
                                            "--save-every", "100"]))
    out = tmp_path / "a" / "model"
    history = json.loads((tmp_path / "a" / "ckpt" / "state.json").read_text())["history"]
    assert summary["amp"] == "bf16" and summary["final"] and all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    throughput = summary["throughput"]
    assert throughput["items"] == 2 and throughput["samples"] >= 2 and 0 <= throughput["data_wait_share"] <= 1
    assert throughput["samples_per_s"] > 0 and throughput["gpu_utilization_percent"] is None  # no GPU here
    names = sorted(p.name for p in out.iterdir())
    assert "model.safetensors.index.json" in names and "model.safetensors" not in names
    assert not any(n.startswith("tokenizer") or n.startswith(".") for n in names)
    build_word_tokenizer(world_words()).save_pretrained(out)  # what a from-scratch run used
    model, _ = load_model(str(out))
    wa = load_file(str(tmp_path / "a" / "ckpt" / "model.safetensors"))
    assert all(torch.equal(v, wa[k]) for k, v in model.state_dict().items())
