"""The released HyperSeg-3B checkpoint (`weic22/HyperSeg-3B`, reference §9) -> `HyperSeg`.

The release stores Mipha/LLaVA names (`model.*` for Phi-2, SigLIP, the projector and the Swin)
and Detectron2/Mask2Former names for the segmentation head, at the top level. `RULES` maps each
released name onto this package's modules; a rule whose runtime side is a tuple splits the released
tensor along dim 0 (fused `qkv` / `in_proj` into q, k, v). Released tensors the runtime never uses
are listed in `IGNORED` with the reason, runtime tensors the release lacks in `RUNTIME_ONLY`.
Loading is strict: an unknown released key, a runtime key nothing fills, or a shape mismatch
raises an error naming it. The safetensors (sharded, mixed fp16/fp32) are read lazily, one tensor
at a time, and cast to the requested dtype.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

# Placeholders in name templates and what they match.
_FIELDS = {"i": r"\d+", "j": r"\d+", "p": r"weight|bias", "rest": r".+"}


@dataclass(frozen=True)
class Rule:
    """released: a released-name template; runtime: the runtime-name template, or a tuple of
    templates that receive equal dim-0 chunks of the released tensor, in order. Placeholders:
    {i} {j} digits, {p} weight|bias, {rest} any tail; both sides use the same placeholders."""

    released: str
    runtime: str | tuple[str, ...]

    @property
    def parts(self) -> tuple[str, ...]:
        return self.runtime if isinstance(self.runtime, tuple) else (self.runtime,)


def _pattern(template: str) -> re.Pattern:
    regex = re.escape(template)
    for name, body in _FIELDS.items():
        regex = regex.replace(re.escape("{" + name + "}"), f"(?P<{name}>{body})")
    return re.compile(regex)


def _attention_split(released: str, runtime: str) -> Rule:
    """Fused q/k/v projection -> three (`{qkv}` in `runtime` becomes q, k, v)."""
    return Rule(released, tuple(runtime.replace("{qkv}", x) for x in "qkv"))


_SWIN_R, _SWIN_T = "model.vision_tower_mask.", "pyramid_encoder.vision_tower_mask."
_BLOCK_R, _BLOCK_T = _SWIN_R + "layers.{i}.blocks.{j}.", _SWIN_T + "swin.encoder.layers.{i}.blocks.{j}."
_PIX_R, _PIX_T = "pixel_decoder.", "predictor.pixel_decoder."
_ENC_R, _ENC_T = _PIX_R + "transformer.encoder.layers.{i}.", _PIX_T + "encoder.layers.{i}."
_DEC_T = "predictor.mask_decoder.decoder."
_SELF_R = "predictor.transformer_self_attention_layers.{i}."
_CROSS_R = "predictor.transformer_cross_attention_layers.{i}."
_FFN_R, _LAYER_T = "predictor.transformer_ffn_layers.{i}.", _DEC_T + "layers.{i}."

RULES: tuple[Rule, ...] = (
    # Phi-2 (LoRA merged in the release) and its untied, bias-free LM head.
    Rule("model.embed_tokens.weight", "llm.model.embed_tokens.weight"),
    Rule("model.layers.{i}.{rest}", "llm.model.layers.{i}.{rest}"),
    Rule("model.final_layernorm.{p}", "llm.model.final_layernorm.{p}"),
    Rule("lm_head.weight", "llm.lm_head.weight"),
    # SigLIP (transformers 4.38 nests it in `vision_model`) and the mlp2x_gelu projector.
    Rule("model.vision_tower.vision_model.{rest}", "vanilla_encoder.vision_tower.{rest}"),
    Rule("model.mm_projector.{i}.{p}", "vanilla_encoder.mm_projector.{i}.{p}"),
    # Swin-B, Detectron2 names -> transformers SwinBackbone.
    Rule(_SWIN_R + "patch_embed.proj.{p}", _SWIN_T + "swin.embeddings.patch_embeddings.projection.{p}"),
    Rule(_SWIN_R + "patch_embed.norm.{p}", _SWIN_T + "swin.embeddings.norm.{p}"),
    Rule(_BLOCK_R + "norm1.{p}", _BLOCK_T + "layernorm_before.{p}"),
    _attention_split(_BLOCK_R + "attn.qkv.{p}", _BLOCK_T + "attention.{qkv}_proj.{p}"),
    Rule(_BLOCK_R + "attn.proj.{p}", _BLOCK_T + "attention.o_proj.{p}"),
    Rule(
        _BLOCK_R + "attn.relative_position_bias_table",
        _BLOCK_T + "attention.relative_position_bias.relative_position_bias_table",
    ),
    Rule(_BLOCK_R + "norm2.{p}", _BLOCK_T + "layernorm_after.{p}"),
    Rule(_BLOCK_R + "mlp.fc1.{p}", _BLOCK_T + "mlp.fc1.{p}"),
    Rule(_BLOCK_R + "mlp.fc2.{p}", _BLOCK_T + "mlp.fc2.{p}"),
    Rule(_SWIN_R + "layers.{i}.downsample.{rest}", _SWIN_T + "swin.encoder.layers.{i}.downsample.{rest}"),
    *(Rule(_SWIN_R + f"norm{k}.{{p}}", _SWIN_T + f"hidden_states_norms.stage{k + 1}.{{p}}") for k in range(4)),
    # Mask tokens, E_Q / E_P projections.
    Rule("seg_query", "seg_query"),
    *(
        Rule(name + ".{p}", f"entity_recognition.{name}.{{p}}")
        for name in ("seg_query_projector", "SEG_token_projector", "class_name_projector", "region_projector")
    ),
    # Fine-grained visual perceiver and the temporal adapter.
    Rule("mgvp_layers.{rest}", "fine_grained_perceiver.mgvp_layers.{rest}"),
    Rule("temporal_query", "fine_grained_perceiver.temporal_query"),
    Rule("expanded_seg_query_project.{p}", "fine_grained_perceiver.expanded_seg_query_project.{p}"),
    Rule("temporal_query_project.{p}", "fine_grained_perceiver.temporal_query_project.{p}"),
    Rule("local_project.{i}.{p}", "fine_grained_perceiver.local_project.{i}.{p}"),
    Rule("level_embed.weight", "fine_grained_perceiver.level_embed.weight"),
    # MSDeformAttn pixel decoder -> pixel_decoder.py (transformers' Mask2Former names).
    Rule(_PIX_R + "input_proj.{i}.{j}.{p}", _PIX_T + "input_projections.{i}.{j}.{p}"),
    Rule(_PIX_R + "transformer.level_embed", _PIX_T + "level_embed"),
    Rule(_ENC_R + "self_attn.{rest}", _ENC_T + "self_attn.{rest}"),
    Rule(_ENC_R + "norm1.{p}", _ENC_T + "self_attn_layer_norm.{p}"),
    Rule(_ENC_R + "linear1.{p}", _ENC_T + "fc1.{p}"),
    Rule(_ENC_R + "linear2.{p}", _ENC_T + "fc2.{p}"),
    Rule(_ENC_R + "norm2.{p}", _ENC_T + "final_layer_norm.{p}"),
    Rule(_PIX_R + "mask_features.{p}", _PIX_T + "mask_projection.{p}"),
    Rule(_PIX_R + "adapter_1.{j}.{p}", _PIX_T + "adapter_1.{j}.{p}"),
    Rule(_PIX_R + "layer_1.{j}.{p}", _PIX_T + "layer_1.{j}.{p}"),
    # Masked-attention decoder -> mask_decoder.py (transformers' Mask2FormerMaskedAttentionDecoder).
    _attention_split(_SELF_R + "self_attn.in_proj_{p}", _LAYER_T + "self_attn.{qkv}_proj.{p}"),
    Rule(_SELF_R + "self_attn.out_proj.{p}", _LAYER_T + "self_attn.out_proj.{p}"),
    Rule(_SELF_R + "norm.{p}", _LAYER_T + "self_attn_layer_norm.{p}"),
    Rule(_CROSS_R + "multihead_attn.in_proj_{p}", _LAYER_T + "cross_attn.in_proj_{p}"),
    Rule(_CROSS_R + "multihead_attn.out_proj.{p}", _LAYER_T + "cross_attn.out_proj.{p}"),
    Rule(_CROSS_R + "norm.{p}", _LAYER_T + "cross_attn_layer_norm.{p}"),
    Rule(_FFN_R + "linear1.{p}", _LAYER_T + "fc1.{p}"),
    Rule(_FFN_R + "linear2.{p}", _LAYER_T + "fc2.{p}"),
    Rule(_FFN_R + "norm.{p}", _LAYER_T + "final_layer_norm.{p}"),
    Rule("predictor.decoder_norm.{p}", _DEC_T + "layernorm.{p}"),
    Rule("predictor.mask_embed.layers.{i}.{p}", _DEC_T + "mask_predictor.mask_embedder.{i}.0.{p}"),
    Rule("predictor.query_embed.weight", "predictor.mask_decoder.query_embed.weight"),
    Rule("predictor.level_embed.weight", "predictor.mask_decoder.level_embed.weight"),
    # Output heads -> output_heads.py.
    *(
        Rule(f"predictor.{name}.layers.{{i}}.{{p}}", f"predictor.heads.{name}.{{i}}.0.{{p}}")
        for name in ("SEG_proj", "CLASS_proj", "REGION_proj", "box_embed", "reid_embed_head")
    ),
)

_SIGLIP_HEAD = "model.vision_tower.vision_model.head."
IGNORED: dict[str, str] = {
    **{
        _SIGLIP_HEAD + suffix: "SigLIP MAP pooling head: HyperSeg uses the patch tokens of layer -2"
        for suffix in (
            "probe", "attention.in_proj_weight", "attention.in_proj_bias", "attention.out_proj.{p}",
            "layernorm.{p}", "mlp.fc1.{p}", "mlp.fc2.{p}",
        )
    },
    _BLOCK_R + "attn.relative_position_index": "constant buffer, recomputed by transformers' Swin",
    "predictor.query_feat.weight": "Mask2Former's learned query features: E_Q replaces them",
    "predictor.SEG_query_embed.weight": "positions of the disabled [SEG]-concat decoder mode",
    "predictor.iou_head.{p}": "box-IoU head, never enabled in the release",
}

# Runtime tensors the release lacks: (fill value, reason).
RUNTIME_ONLY: dict[str, tuple[float, str]] = {
    "llm.lm_head.bias": (0.0, "the released LM head has no bias: zeros are equivalent"),
    _SWIN_T + "swin.layernorm.weight": (1.0, "SwinModel's final norm, unused by SwinBackbone"),
    _SWIN_T + "swin.layernorm.bias": (0.0, "SwinModel's final norm, unused by SwinBackbone"),
}

_COMPILED = [(_pattern(rule.released), [_pattern(t) for t in rule.parts], rule) for rule in RULES]
_IGNORED = [_pattern(template) for template in IGNORED]


@dataclass(frozen=True)
class Source:
    """Where a runtime tensor comes from: chunk `part` of `parts` (dim 0) of released tensor `name`."""

    name: str
    part: int = 0
    parts: int = 1


def runtime_names(released_name: str) -> tuple[str, ...] | None:
    """Runtime names filled by one released tensor (several for a split), None if it is IGNORED.
    Raises KeyError for a name no rule knows."""
    for pattern in _IGNORED:
        if pattern.fullmatch(released_name):
            return None
    for released, _, rule in _COMPILED:
        match = released.fullmatch(released_name)
        if match:
            return tuple(template.format(**match.groupdict()) for template in rule.parts)
    raise KeyError(f"unexpected key in the released checkpoint: {released_name!r} (no mapping rule)")


def released_source(runtime_name: str) -> Source | None:
    """The released tensor behind a runtime name; None for RUNTIME_ONLY; KeyError if none."""
    if runtime_name in RUNTIME_ONLY:
        return None
    for _, runtime, rule in _COMPILED:
        for part, pattern in enumerate(runtime):
            match = pattern.fullmatch(runtime_name)
            if match:
                return Source(rule.released.format(**match.groupdict()), part, len(runtime))
    raise KeyError(f"no released key maps to runtime key {runtime_name!r}")


def conversion_plan(released: Iterable[str], runtime: Iterable[str]) -> dict[str, Source]:
    """runtime name -> Source for every runtime key but RUNTIME_ONLY; strict both ways: raises
    KeyError naming unexpected released keys and runtime keys left missing."""
    runtime = list(runtime)
    wanted = set(runtime)
    plan: dict[str, Source] = {}
    unexpected: list[str] = []
    for name in released:
        try:
            targets = runtime_names(name)
        except KeyError:
            unexpected.append(name)
            continue
        for part, target in enumerate(targets or ()):
            if target not in wanted:
                unexpected.append(f"{name} (-> {target}, which the model does not have)")
            plan[target] = Source(name, part, len(targets))
    missing = [n for n in runtime if n not in plan and n not in RUNTIME_ONLY]
    if unexpected or missing:
        raise KeyError(
            "released checkpoint does not match HyperSeg: "
            + (f"unexpected keys {_first(unexpected)}" if unexpected else "")
            + ("; " if unexpected and missing else "")
            + (f"missing keys {_first(missing)}" if missing else "")
        )
    return plan


def released_state_dict(runtime_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse mapping: runtime tensors -> released names (split parts concatenated again).
    RUNTIME_ONLY tensors are dropped; IGNORED tensors are not produced."""
    pieces: dict[str, dict[int, torch.Tensor]] = {}
    counts: dict[str, int] = {}
    for name, tensor in runtime_state.items():
        source = released_source(name)
        if source is None:
            continue
        pieces.setdefault(source.name, {})[source.part] = tensor
        counts[source.name] = source.parts
    out = {}
    for name, parts in pieces.items():
        if len(parts) != counts[name]:
            raise KeyError(f"released key {name!r} needs {counts[name]} runtime parts, got {sorted(parts)}")
        out[name] = parts[0] if counts[name] == 1 else torch.cat([parts[k] for k in range(counts[name])], 0)
    return out


class ReleasedCheckpoint:
    """Lazy view of a released safetensors checkpoint: `model.safetensors.index.json` + shards, or a
    single `model.safetensors`. Use as a context manager (keeps the shards open)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        index = self.directory / "model.safetensors.index.json"
        if index.is_file():
            self.weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
        elif (self.directory / "model.safetensors").is_file():
            with safe_open(self.directory / "model.safetensors", framework="pt") as f:
                self.weight_map = {name: "model.safetensors" for name in f.keys()}
        else:
            raise FileNotFoundError(f"no model.safetensors(.index.json) in {self.directory}")
        self._stack = ExitStack()
        self._files: dict[str, object] = {}

    def __enter__(self) -> ReleasedCheckpoint:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _file(self, name: str):
        shard = self.weight_map[name]
        if shard not in self._files:
            self._files[shard] = self._stack.enter_context(safe_open(self.directory / shard, framework="pt"))
        return self._files[shard]

    def names(self) -> list[str]:
        return list(self.weight_map)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._file(name).get_slice(name).get_shape())

    def tensor(self, name: str) -> torch.Tensor:
        return self._file(name).get_tensor(name)


@torch.no_grad()
def load_released_weights(model: torch.nn.Module, checkpoint: ReleasedCheckpoint) -> None:
    """Fill every parameter and persistent buffer of a HyperSeg from the released tensors (cast to
    each target's dtype). All names and shapes are checked before anything is written."""
    state = model.state_dict()
    plan = conversion_plan(checkpoint.names(), state)
    mismatched = []
    for target, source in plan.items():
        shape = list(checkpoint.shape(source.name))
        shape[0] //= source.parts
        if tuple(shape) != tuple(state[target].shape):
            mismatched.append(
                f"{source.name} {tuple(checkpoint.shape(source.name))}"
                + (f" (part {source.part} of {source.parts})" if source.parts > 1 else "")
                + f" -> {target} {tuple(state[target].shape)}"
            )
    if mismatched:
        raise ValueError(f"shape mismatch between the released checkpoint and HyperSeg: {_first(mismatched)}")
    by_source: dict[str, list[tuple[str, Source]]] = {}
    for target, source in plan.items():
        by_source.setdefault(source.name, []).append((target, source))
    for name, targets in by_source.items():  # one released tensor in memory at a time
        tensor = checkpoint.tensor(name)
        for target, source in targets:
            state[target].copy_(tensor.chunk(source.parts, 0)[source.part] if source.parts > 1 else tensor)
    for name, (value, _) in RUNTIME_ONLY.items():
        if name in state:
            state[name].fill_(value)


@contextmanager
def _default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


# config.json keys of the released Phi-2 (top level) and SigLIP (vision_config.vision_tower) read into
# HyperSegConfig; sizes the release hard-codes in its constructors are read from the tensor shapes.
_LLM_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
             "partial_rotary_factor", "max_position_embeddings", "hidden_act", "layer_norm_eps", "rope_theta",
             "qk_layernorm")
_VISION_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "patch_size",
                "hidden_act", "layer_norm_eps", "num_channels")
RELEASED_HEADS = 8  # FVP, pixel decoder and mask decoder attention heads, hard-coded by the release


def released_config(directory: str | Path, checkpoint: ReleasedCheckpoint, **overrides):
    """HyperSegConfig of a released directory: Phi-2 and SigLIP settings from its config.json (Mipha
    format: model_type mipha_phi, vision_config.vision_tower / mm_projector), the Swin, FVP and
    predictor sizes from the tensor shapes, the release's conventions (config defaults).
    overrides: HyperSegConfig fields the directory cannot state, e.g. pyramid_image_size (the release
    reads 1024 from its detectron2 yaml)."""
    from .config import HyperSegConfig

    released = json.loads((Path(directory) / "config.json").read_text())
    vision = released.get("vision_config", {})
    tower, projector = vision.get("vision_tower", {}), vision.get("mm_projector", {})
    if projector.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise ValueError(f"unsupported mm_projector_type {projector['mm_projector_type']!r} (expected mlp2x_gelu)")
    shape = checkpoint.shape
    names = checkpoint.names()

    def count(pattern: str) -> int:
        regex = re.compile(pattern)
        return len({m.group(1) for n in names if (m := regex.match(n))})

    sizes = HyperSegConfig.from_size("3b")
    llm = dict(sizes.llm_config, **{k: released[k] for k in _LLM_KEYS if k in released})
    llm["vocab_size"] = shape("lm_head.weight")[0]
    vision_config = dict(sizes.vision_config, **{k: tower[k] for k in _VISION_KEYS if k in tower})
    patch = shape(_SWIN_R + "patch_embed.proj.weight")
    depths = [count(rf"{re.escape(_SWIN_R)}layers\.{i}\.blocks\.(\d+)\.") for i in range(4)]
    tables = [shape(f"{_SWIN_R}layers.{i}.blocks.0.attn.relative_position_bias_table") for i in range(4)]
    pyramid = dict(sizes.pyramid_config, embed_dim=patch[0], patch_size=patch[-1], depths=depths,
                   num_heads=[t[1] for t in tables], window_size=(round(tables[0][0] ** 0.5) + 1) // 2)
    latents, perceiver_dim = shape("temporal_query")
    hidden_dim = shape("predictor.query_embed.weight")[1]
    offsets = shape(_PIX_R + "transformer.encoder.layers.0.self_attn.sampling_offsets.weight")[0]
    predictor = dict(
        hidden_dim=hidden_dim, num_queries=shape("predictor.query_embed.weight")[0],
        encoder_layers=count(rf"{re.escape(_PIX_R)}transformer\.encoder\.layers\.(\d+)\."),
        encoder_ffn_dim=shape(_PIX_R + "transformer.encoder.layers.0.linear1.weight")[0],
        decoder_layers=count(r"predictor\.transformer_ffn_layers\.(\d+)\."),
        decoder_ffn_dim=shape("predictor.transformer_ffn_layers.0.linear1.weight")[0],
        num_heads=RELEASED_HEADS, num_points=offsets // (RELEASED_HEADS * 3 * 2),
        reid_dim=shape("predictor.reid_embed_head.layers.2.weight")[0])
    fields = dict(
        llm_config=llm, vision_config=vision_config, pyramid_config=pyramid, predictor_config=predictor,
        embedding_rows=shape("model.embed_tokens.weight")[0], num_mask_tokens=shape("seg_query")[0],
        num_fine_grained_tokens=latents, perceiver_dim=perceiver_dim, perceiver_heads=RELEASED_HEADS,
        perceiver_dim_head=shape("mgvp_layers.layers.0.0.to_q.weight")[0] // RELEASED_HEADS,
        perceiver_ff_mult=shape("mgvp_layers.layers.0.1.1.weight")[0] // perceiver_dim,
        vision_image_size=int(tower.get("image_size", sizes.vision_image_size)),
        vision_feature_layer=int(tower.get("mm_vision_select_layer", sizes.vision_feature_layer)),
        reid_dim=predictor["reid_dim"],
    )
    return HyperSegConfig.from_size("3b", **{**fields, **overrides})


def load_released(path: str, dtype: torch.dtype = torch.bfloat16, config=None, **overrides):
    """A released HyperSeg-3B directory -> (HyperSeg in eval mode, tokenizer of that directory).

    dtype: bfloat16 / float16 / float32 of every weight (the release stores fp16 + fp32).
    config: HyperSegConfig; default `released_config(path, ..., **overrides)`.
    The model is built without random initialisation, directly in `dtype`, then filled strictly.
    """
    from transformers.initialization import no_init_weights

    from .hyperseg import HyperSeg
    from .tokenizer import load_tokenizer

    with ReleasedCheckpoint(path) as checkpoint:
        if config is None:
            config = released_config(path, checkpoint, **overrides)
        with no_init_weights(), _default_dtype(dtype):
            model = HyperSeg(config)
        load_released_weights(model, checkpoint)
    return model.eval(), load_tokenizer(path)


def _first(items: list[str], n: int = 8) -> str:
    shown = ", ".join(items[:n])
    return shown + (f" ... ({len(items)} in all)" if len(items) > n else "")
