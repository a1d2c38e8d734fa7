"""HyperSeg forward (tiny config): shapes per task, gradients, temporal latents, save/load."""
import numpy as np
import pytest
import torch
from tiny_model import frame

from hyperseg_ros.command import Command
from hyperseg_ros.model import load_model
from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.multimodal_sequence import build_token_batch
from hyperseg_ros.model.preprocess import preprocess_image
from hyperseg_ros.model.region_prompt import region_points

COMMANDS = {
    "referring": [Command("referring", "the red circle"), Command("referring", "blue star on the left")],
    "reasoning": [Command("reasoning", "the shape with three corners"), Command("reasoning", "like the sky")],
    "open_vocabulary": [Command("open_vocabulary", categories=("red circle", "star", "yellow")),
                        Command("open_vocabulary", categories=("triangle",))],
    "visual_prompt": [Command("visual_prompt", boxes=((2, 3, 20, 10),), points=((40, 30),)),
                      Command("visual_prompt", points=((5, 5),))],
}


def _batch(model, tokenizer, task):
    cfg = model.config
    images = [frame(1), frame(2)]
    inputs = [preprocess_image(im, cfg) for im in images]
    commands = COMMANDS[task]
    tokens = build_token_batch(tokenizer, cfg, commands)
    masks = [region_points(c.boxes, c.points, im.shape[:2], cfg) for c, im in zip(commands, images)]
    return (torch.stack([i.pyramid for i in inputs]), torch.stack([i.vision for i in inputs]), tokens,
            masks if task == "visual_prompt" else None)


@pytest.mark.parametrize("task", list(COMMANDS))
def test_forward_shapes(tiny, task):
    model, tokenizer = tiny
    cfg = model.config
    pyramid, vision, tokens, masks = _batch(model, tokenizer, task)
    timings = {}
    with torch.inference_mode():
        out = model(pyramid, vision, tokens, region_points=masks, timings=timings)
    p = out.predictions
    q, stride4 = cfg.num_mask_tokens, cfg.pyramid_image_size // 4
    d = cfg.predictor_config["hidden_dim"]
    n = {"open_vocabulary": 3, "visual_prompt": 2}.get(task, 1)
    assert p.mask_logits.shape == (2, q, stride4, stride4)
    assert p.boxes.shape == (2, q, 4) and p.reid_embeddings.shape == (2, q, cfg.reid_dim)
    assert len(p.aux) == cfg.predictor_config["decoder_layers"]
    assert out.query_embeddings.shape == (2, q, d)
    assert out.prompt_embeddings.shape == (2, n, d) and out.prompt_mask.shape == (2, n)
    assert out.temporal_latents.shape == (2, cfg.num_fine_grained_tokens, cfg.perceiver_dim)
    if task in ("referring", "reasoning"):
        assert p.refer_logits.shape == (2, q) and p.class_logits is None and p.region_logits is None
    elif task == "open_vocabulary":
        assert p.class_logits.shape == (2, q, 3)
        assert torch.isinf(p.class_logits[1, :, 1:]).all()  # padded categories never win
    else:
        assert p.region_logits.shape == (2, 2, q) and out.region_tokens.shape == (2, 2, cfg.llm_width)
        assert out.region_tokens[1, 1].abs().sum() == 0  # sample 1 has one region only
    assert set(timings) == {"pyramid_encoder", "vanilla_encoder", "perceiver", "llm", "predictor"}
    assert all(torch.isfinite(t).all() for t in (p.mask_logits, p.boxes, out.temporal_latents))


def test_batch_rows_are_independent(tiny):
    """Right padding + attention mask: a sample's output does not depend on its batch mates."""
    model, tokenizer = tiny
    pyramid, vision, tokens, _ = _batch(model, tokenizer, "referring")
    single = build_token_batch(tokenizer, model.config, COMMANDS["referring"][1:])
    with torch.inference_mode():
        both = model(pyramid, vision, tokens).predictions
        alone = model(pyramid[1:], vision[1:], single).predictions
    torch.testing.assert_close(both.mask_logits[1:], alone.mask_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(both.refer_logits[1:], alone.refer_logits, atol=1e-4, rtol=1e-4)


def test_temporal_latents_change_the_next_frame(tiny):
    model, tokenizer = tiny
    pyramid, vision, tokens, _ = _batch(model, tokenizer, "referring")
    with torch.inference_mode():
        first = model(pyramid, vision, tokens)
        again = model(pyramid, vision, tokens, temporal_latents=first.temporal_latents)
    assert not torch.allclose(first.predictions.mask_logits, again.predictions.mask_logits)


def test_gradients_reach_every_trainable_module(tiny):
    model, tokenizer = tiny
    model = HyperSeg(model.config).train()  # a fresh copy: the shared fixture stays untouched
    torch.manual_seed(1)
    for task in COMMANDS:
        pyramid, vision, tokens, masks = _batch(model, tokenizer, task)
        out = model(pyramid, vision, tokens, region_points=masks,
                    temporal_latents=torch.randn(2, model.config.num_fine_grained_tokens, model.config.perceiver_dim))
        p = out.predictions
        terms = [out.temporal_latents]
        for r in [p, *p.aux]:
            terms += [t for t in (r.mask_logits, r.refer_logits, r.class_logits, r.region_logits, r.boxes,
                                  r.reid_embeddings) if t is not None]
        loss = sum(t[torch.isfinite(t)].float().square().mean() for t in terms)
        loss.backward()
    # first-frame latents are learned too
    pyramid, vision, tokens, _ = _batch(model, tokenizer, "referring")
    model(pyramid, vision, tokens).predictions.mask_logits.mean().backward()
    # Unused by segmentation by design: SigLIP's post-LN (features are taken before it), Swin's
    # final LN (the backbone has per-stage norms) and the LM head (no text generation).
    unused = ("vanilla_encoder.vision_tower.post_layernorm.", "pyramid_encoder.vision_tower_mask.swin.layernorm.",
              "llm.lm_head.")
    missing = [n for n, w in model.named_parameters() if w.grad is None and not n.startswith(unused)]
    assert missing == []
    # Zero gradient is allowed only where Deformable-DETR init zeroes the path (level_embed feeds
    # sampling offsets / attention weights whose weights start at 0).
    zero = [n for n, w in model.named_parameters() if w.grad is not None and w.grad.abs().sum() == 0]
    assert zero == ["predictor.pixel_decoder.level_embed"] or zero == []
    for name in ("seg_query", "fine_grained_perceiver.temporal_query", "entity_recognition.region_projector.weight",
                 "entity_recognition.class_name_projector.weight", "entity_recognition.SEG_token_projector.weight",
                 "fine_grained_perceiver.temporal_query_project.weight", "vanilla_encoder.mm_projector.0.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name


def test_save_load_round_trip(tiny, tmp_path):
    model, tokenizer = tiny
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, loaded_tokenizer = load_model(str(tmp_path))
    unnamed = {"_name_or_path": ""}
    assert isinstance(loaded.config, HyperSegConfig)
    assert loaded.config.to_diff_dict() | unnamed == model.config.to_diff_dict() | unnamed
    pyramid, vision, tokens, _ = _batch(model, tokenizer, "open_vocabulary")
    tokens2 = build_token_batch(loaded_tokenizer, loaded.config, COMMANDS["open_vocabulary"])
    assert torch.equal(tokens.input_ids, tokens2.input_ids)
    with torch.inference_mode():
        a, b = model(pyramid, vision, tokens), loaded(pyramid, vision, tokens2)
    assert torch.equal(a.predictions.mask_logits, b.predictions.mask_logits)
    assert torch.equal(a.predictions.class_logits, b.predictions.class_logits)
    assert torch.equal(a.temporal_latents, b.temporal_latents)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no HyperSeg model"):
        load_model(str(tmp_path / "nowhere"))


def test_sizes_are_data():
    big = HyperSegConfig.from_size("3b")
    assert big.llm_width == 2560 and big.vision_grid == 27 and big.pyramid_channels == [128, 256, 512, 1024]
    assert big.llm().num_hidden_layers == 32 and big.embedding_rows == 50296
    assert big.vision().num_hidden_layers == 27 and big.pyramid().depths == [2, 2, 18, 2]
    small = HyperSegConfig.from_size("small", vocab_size=300)
    assert small.llm_config["vocab_size"] == 300 and small.embedding_rows is None
    with pytest.raises(ValueError):
        HyperSegConfig.from_size("huge")


def test_3b_architecture_matches_the_release_parameter_counts():
    """Built on the meta device (no memory): module sizes equal the release's analytic counts."""
    with torch.device("meta"):
        model = HyperSeg(HyperSegConfig.from_size("3b"))
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(model.fine_grained_perceiver) == 13_058_048
    assert count(model.fine_grained_perceiver.mgvp_layers) == 9_447_424
    assert count(model.vanilla_encoder.mm_projector) == 9_507_840
    assert count(model.predictor.pixel_decoder) == 5_544_896
    assert tuple(model.llm.model.embed_tokens.weight.shape) == (50296, 2560)
    assert tuple(model.llm.lm_head.weight.shape) == (51200, 2560)
    assert count(model.llm.model.layers) + count(model.llm.model.final_layernorm) == 2_517_488_640
    assert tuple(model.seg_query.shape) == (100, 2560)
    # release total 3.339-3.341 B includes SigLIP's unused 15.24 M attention-pooling head
    assert 3.32e9 < count(model) < 3.33e9


def test_preprocess_keeps_the_valid_size():
    cfg = HyperSegConfig.from_size("tiny")
    image = np.zeros((30, 60, 3), np.uint8)
    image[:, :, 0] = 255
    inp = preprocess_image(image, cfg)
    assert inp.pyramid.shape == (3, 64, 64) and inp.vision.shape == (3, 32, 32)
    assert inp.valid_size == (32, 64) and inp.image_size == (30, 60)
    assert inp.pyramid[:, 32:].abs().sum() == 0  # padding = the mean
    assert torch.allclose(inp.pyramid[0, 0, 0], torch.tensor((255 - 123.675) / 58.395))
    assert torch.allclose(inp.vision[:, 5, 5], torch.tensor([1.0, -1.0, -1.0]))
