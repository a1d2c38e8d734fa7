"""Released HyperSeg-3B checkpoint mapping: 3b sizes on the meta device, every released name, a tiny
released-format checkpoint (sharded, mixed fp16/fp32) that loads and reproduces, strict errors."""
import json

import pytest
import torch
from safetensors.torch import save_file
from tiny_model import WORDS, frame

from hyperseg_ros.command import Command
from hyperseg_ros.model.checkpoint import (
    RUNTIME_ONLY,
    ReleasedCheckpoint,
    conversion_plan,
    load_released,
    load_released_weights,
    released_state_dict,
    runtime_names,
)
from hyperseg_ros.model.config import HyperSegConfig
from hyperseg_ros.model.hyperseg import HyperSeg
from hyperseg_ros.model.multimodal_sequence import build_token_batch
from hyperseg_ros.model.preprocess import preprocess_image
from hyperseg_ros.model.tokenizer import build_word_tokenizer


def released_3b_names() -> set[str]:
    """The released key names, written from the reference's §9.3 tables and the 3B module sizes
    (Phi-2 32 layers, SigLIP 27 layers + MAP head, Swin-B [2,2,18,2], 6 + 9 head layers)."""
    wb = ("weight", "bias")
    names = {"model.embed_tokens.weight", "lm_head.weight", "seg_query", "temporal_query", "level_embed.weight"}
    names |= {f"model.final_layernorm.{p}" for p in wb}
    for i in range(32):
        for m in ("input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.dense",
                  "mlp.fc1", "mlp.fc2"):
            names |= {f"model.layers.{i}.{m}.{p}" for p in wb}
    v = "model.vision_tower.vision_model."
    names |= {v + "embeddings.patch_embedding.weight", v + "embeddings.patch_embedding.bias",
              v + "embeddings.position_embedding.weight", v + "head.probe", v + "head.attention.in_proj_weight",
              v + "head.attention.in_proj_bias"}
    names |= {v + f"{m}.{p}" for m in ("post_layernorm", "head.attention.out_proj", "head.layernorm",
                                       "head.mlp.fc1", "head.mlp.fc2") for p in wb}
    for i in range(27):
        for m in ("layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                  "layer_norm2", "mlp.fc1", "mlp.fc2"):
            names |= {f"{v}encoder.layers.{i}.{m}.{p}" for p in wb}
    names |= {f"model.mm_projector.{i}.{p}" for i in (0, 2) for p in wb}
    s = "model.vision_tower_mask."
    names |= {f"{s}patch_embed.{m}.{p}" for m in ("proj", "norm") for p in wb}
    for i, depth in enumerate((2, 2, 18, 2)):
        names |= {f"{s}norm{i}.{p}" for p in wb}
        for j in range(depth):
            b = f"{s}layers.{i}.blocks.{j}."
            names |= {b + "attn.relative_position_bias_table", b + "attn.relative_position_index"}
            names |= {b + f"{m}.{p}" for m in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
                      for p in wb}
        if i < 3:
            names |= {f"{s}layers.{i}.downsample.reduction.weight"}
            names |= {f"{s}layers.{i}.downsample.norm.{p}" for p in wb}
    for m in ("seg_query_projector", "SEG_token_projector", "class_name_projector", "region_projector",
              "expanded_seg_query_project", "temporal_query_project"):
        names |= {f"{m}.{p}" for p in wb}
    names |= {f"local_project.{i}.{p}" for i in range(3) for p in wb}
    for i in range(3):
        g = f"mgvp_layers.layers.{i}."
        names |= {g + f"0.{m}.{p}" for m in ("norm_media", "norm_latents") for p in wb}
        names |= {g + f"0.{m}.weight" for m in ("to_q", "to_kv", "to_out")}
        names |= {g + "1.0.weight", g + "1.0.bias", g + "1.1.weight", g + "1.3.weight"}
    names |= {f"mgvp_layers.norm.{p}" for p in wb}
    d = "pixel_decoder."
    names |= {f"{d}input_proj.{i}.{j}.{p}" for i in range(3) for j in range(2) for p in wb}
    names |= {d + "transformer.level_embed"}
    for i in range(6):
        names |= {f"{d}transformer.encoder.layers.{i}.{m}.{p}" for p in wb for m in (
            "self_attn.sampling_offsets", "self_attn.attention_weights", "self_attn.value_proj",
            "self_attn.output_proj", "norm1", "linear1", "linear2", "norm2")}
    names |= {f"{d}{m}.{p}" for m in ("mask_features", "adapter_1.0", "adapter_1.1", "layer_1.0", "layer_1.1")
              for p in wb}
    for i in range(9):
        for kind, attn in (("self", "self_attn"), ("cross", "multihead_attn")):
            layer = f"predictor.transformer_{kind}_attention_layers.{i}."
            names |= {layer + f"{attn}.in_proj_{p}" for p in wb}
            names |= {layer + f"{attn}.out_proj.{p}" for p in wb} | {layer + f"norm.{p}" for p in wb}
        names |= {f"predictor.transformer_ffn_layers.{i}.{m}.{p}" for m in ("linear1", "linear2", "norm") for p in wb}
    names |= {f"predictor.{m}.weight" for m in ("query_feat", "query_embed", "SEG_query_embed", "level_embed")}
    names |= {f"predictor.{m}.{p}" for m in ("decoder_norm", "iou_head") for p in wb}
    for head, depth in (("mask_embed", 3), ("box_embed", 3), ("reid_embed_head", 3), ("SEG_proj", 2),
                        ("CLASS_proj", 2), ("REGION_proj", 2)):
        names |= {f"predictor.{head}.layers.{k}.{p}" for k in range(depth) for p in wb}
    return names


@pytest.fixture(scope="module")
def meta_3b():
    with torch.device("meta"):
        return HyperSeg(HyperSegConfig.from_size("3b"))


def test_3b_builds_on_meta_with_the_released_size(meta_3b):
    total = sum(p.numel() for p in meta_3b.parameters())
    assert abs(total - 3.34e9) / 3.34e9 < 0.01
    predictor = meta_3b.predictor
    assert sum(p.numel() for p in predictor.pixel_decoder.parameters()) == 5_544_896  # reference §9.4
    # Reference §9.4 predictor total minus the ignored query_feat, SEG_query_embed and iou_head.
    head = sum(p.numel() for m in (predictor.mask_decoder, predictor.heads) for p in m.parameters())
    assert head == 15_209_477 - 100 * 256 - 101 * 256 - 257


def test_every_released_key_maps(meta_3b):
    expected = released_3b_names()
    runtime = meta_3b.state_dict()
    plan = conversion_plan(sorted(expected), runtime)
    assert set(plan) | set(RUNTIME_ONLY) == set(runtime)
    produced = released_state_dict(runtime)
    assert set(produced) <= expected
    ignored = expected - set(produced)
    # SigLIP MAP head (11), Swin relative_position_index (24 blocks), query_feat, SEG_query_embed, iou_head (4).
    assert len(ignored) == 11 + 24 + 4
    assert all(runtime_names(name) is None for name in ignored)
    shapes = {k: tuple(v.shape) for k, v in produced.items()}
    assert shapes["lm_head.weight"] == (51200, 2560)
    assert shapes["model.embed_tokens.weight"] == (50296, 2560)
    assert shapes["seg_query"] == (100, 2560)
    assert shapes["model.mm_projector.0.weight"] == (2560, 1152)
    assert shapes["model.vision_tower_mask.layers.2.blocks.17.attn.qkv.weight"] == (1536, 512)
    assert shapes["model.vision_tower_mask.layers.2.downsample.reduction.weight"] == (1024, 2048)
    assert shapes["predictor.transformer_self_attention_layers.8.self_attn.in_proj_weight"] == (768, 256)
    assert shapes["pixel_decoder.input_proj.0.0.weight"] == (256, 1024, 1, 1)  # res5 first
    assert shapes["temporal_query"] == (128, 512) and shapes["mgvp_layers.layers.2.1.1.weight"] == (2048, 512)


def _inputs(model, tokenizer):
    x = preprocess_image(frame(3), model.config)
    tokens = build_token_batch(tokenizer, model.config, [Command("referring", "the red circle")])
    return x.pyramid[None], x.vision[None], tokens


def _write_released(directory, tensors: dict[str, torch.Tensor]) -> None:
    """Two shards + index: Phi-2, SigLIP and the projector in fp16; Swin and the segmentation side
    in fp32 (as released, reference §9.4)."""
    half = {k: v.half() for k, v in tensors.items()
            if k.startswith(("model.", "lm_head")) and not k.startswith("model.vision_tower_mask.")}
    full = {k: v.float().contiguous() for k, v in tensors.items() if k not in half}
    shards = {"model-00001-of-00002.safetensors": half, "model-00002-of-00002.safetensors": full}
    for name, part in shards.items():
        save_file({k: v.contiguous() for k, v in part.items()}, str(directory / name))
    index = {"metadata": {}, "weight_map": {k: n for n, part in shards.items() for k in part}}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    (directory / "config.json").write_text(json.dumps({"model_type": "mipha_phi"}))


@pytest.fixture(scope="module")
def released_tiny(tmp_path_factory):
    """(directory, reference model, tokenizer): a tiny model saved under the released names."""
    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(WORDS)
    config = HyperSegConfig.from_size("tiny", vocab_size=len(tokenizer))
    model = HyperSeg(config).eval()
    with torch.no_grad():  # the release stores the LLM side in fp16: make the reference exact
        for name, p in model.named_parameters():
            if name.startswith(("llm.", "vanilla_encoder.")):
                p.copy_(p.half().float())
            if name in RUNTIME_ONLY:
                p.fill_(RUNTIME_ONLY[name][0])
    tensors = released_state_dict(model.state_dict())
    g = torch.Generator().manual_seed(1)
    # Tensors the release has and the runtime ignores.
    tensors["model.vision_tower.vision_model.head.probe"] = torch.randn(1, 1, 16, generator=g)
    tensors["model.vision_tower.vision_model.head.mlp.fc1.weight"] = torch.randn(32, 16, generator=g)
    tensors["model.vision_tower_mask.layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(4, 4)
    tensors["predictor.query_feat.weight"] = torch.randn(4, 16, generator=g)
    tensors["predictor.iou_head.bias"] = torch.randn(1, generator=g)
    directory = tmp_path_factory.mktemp("released")
    _write_released(directory, tensors)
    tokenizer.save_pretrained(str(directory))
    return directory, model, tokenizer, tensors


def test_tiny_released_checkpoint_loads_and_reproduces(released_tiny):
    directory, reference, tokenizer, _ = released_tiny
    loaded, loaded_tokenizer = load_released(str(directory), torch.float32, config=reference.config)
    assert len(loaded_tokenizer) == len(tokenizer)
    ref_state, state = reference.state_dict(), loaded.state_dict()
    assert set(ref_state) == set(state)
    for name in ref_state:
        assert torch.equal(ref_state[name], state[name]), name
    pyramid, vision, tokens = _inputs(reference, tokenizer)
    with torch.inference_mode():
        a = reference(pyramid, vision, tokens).predictions
        b = loaded(pyramid, vision, tokens).predictions
    torch.testing.assert_close(b.mask_logits, a.mask_logits, rtol=0, atol=0)
    torch.testing.assert_close(b.refer_logits, a.refer_logits, rtol=0, atol=0)
    torch.testing.assert_close(b.reid_embeddings, a.reid_embeddings, rtol=0, atol=0)


def test_tiny_released_checkpoint_loads_in_bf16(released_tiny):
    directory, reference, tokenizer, _ = released_tiny
    loaded, _ = load_released(str(directory), torch.bfloat16, config=reference.config)
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    w = "predictor.mask_decoder.decoder.layers.0.self_attn.k_proj.weight"
    torch.testing.assert_close(loaded.state_dict()[w], reference.state_dict()[w].bfloat16())


def _fresh(config):
    torch.manual_seed(5)
    return HyperSeg(config)


def test_a_renamed_key_fails_with_its_name(released_tiny, tmp_path):
    directory, reference, _, tensors = released_tiny
    renamed = dict(tensors)
    renamed["predictor.decoder_normal.weight"] = renamed.pop("predictor.decoder_norm.weight")
    _write_released(tmp_path, renamed)
    with ReleasedCheckpoint(tmp_path) as ckpt, pytest.raises(KeyError) as error:
        load_released_weights(_fresh(reference.config), ckpt)
    assert "predictor.decoder_normal.weight" in str(error.value)  # unexpected
    assert "predictor.mask_decoder.decoder.layernorm.weight" in str(error.value)  # missing


def test_a_missing_key_and_a_wrong_shape_fail_with_their_names(released_tiny, tmp_path):
    directory, reference, _, tensors = released_tiny
    missing = {k: v for k, v in tensors.items() if k != "seg_query"}
    _write_released(tmp_path, missing)
    with ReleasedCheckpoint(tmp_path) as ckpt, pytest.raises(KeyError, match="missing keys seg_query"):
        load_released_weights(_fresh(reference.config), ckpt)
    reshaped = dict(tensors)
    reshaped["model.vision_tower_mask.layers.0.blocks.0.attn.qkv.weight"] = torch.zeros(30, 8)
    _write_released(tmp_path, reshaped)
    model = _fresh(reference.config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with ReleasedCheckpoint(tmp_path) as ckpt, pytest.raises(ValueError) as error:
        load_released_weights(model, ckpt)
    message = str(error.value)
    assert "model.vision_tower_mask.layers.0.blocks.0.attn.qkv.weight (30, 8)" in message
    assert "attention.q_proj.weight (8, 8)" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing half-loaded
