"""Parity with the released HyperSeg code (test/data/release_parity, see its README).

The fixture holds a tiny released-format directory (config.json as released, random weights under
the release's key names) and the outputs of the release's own modules on it: every stage of two
referring frames (with the temporal recurrence), one open-vocabulary prompt and one box prompt. This
package loads the directory through `load_released` and must reproduce each stage within 1e-4, the
same top-1 query, its score within 1e-4 and its mask with IoU >= 0.99.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hyperseg_ros.command import Command
from hyperseg_ros.model.checkpoint import ReleasedCheckpoint, load_released, released_config
from hyperseg_ros.model.entity_recognition import EntityRecognition
from hyperseg_ros.model.multimodal_sequence import FINE_GRAINED, build_token_batch, splice_embeddings
from hyperseg_ros.model.postprocess import postprocess
from hyperseg_ros.model.preprocess import preprocess_image
from hyperseg_ros.model.region_prompt import region_masks, region_points
from hyperseg_ros.model.session import SegmentationSession
from hyperseg_ros.model.vllm import language_model_hidden_states

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "release_parity"
PYRAMID_SIZE = 128  # the release reads its pyramid size from a detectron2 yaml, not config.json
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def released():
    model, tokenizer = load_released(str(FIXTURE), torch.float32, pyramid_image_size=PYRAMID_SIZE)
    reference = load_file(str(FIXTURE / "release_outputs.safetensors"))
    meta = json.loads((FIXTURE / "release_outputs.json").read_text())
    return model, tokenizer, reference, meta


def close(name: str, ours: torch.Tensor, theirs: torch.Tensor) -> None:
    ours = ours.detach().float().squeeze(0)
    assert ours.shape == theirs.shape, f"{name}: shape {tuple(ours.shape)} != release {tuple(theirs.shape)}"
    error = (ours - theirs).abs().max().item()
    assert error <= TOLERANCE, f"{name}: max |ours - release| = {error:.3g}"


def commands(meta) -> dict[str, Command]:
    cases = meta["cases"]
    return {"referring": Command("referring", cases["referring_0"]["text"]),
            "reasoning": Command("reasoning", cases["reasoning"]["text"]),
            "open_vocabulary": Command("open_vocabulary", categories=tuple(cases["open_vocabulary"]["categories"])),
            "visual_prompt": Command("visual_prompt", boxes=(tuple(cases["visual_prompt"]["box"]),)),
            "visual_prompt_point": Command("visual_prompt", points=(tuple(cases["visual_prompt_point"]["point"]),))}


@torch.no_grad()
def run_stages(model, tokenizer, reference, image, frame, prefix, command, latents):
    """Every stage of one HyperSeg pass checked against the release; returns (predictions, next latents)."""
    config = model.config
    inputs = preprocess_image(image, config)
    close(f"frame {frame} pyramid pixels", inputs.pyramid, reference[f"frame_{frame}.pyramid_pixels"])
    close(f"frame {frame} SigLIP pixels", inputs.vision, reference[f"frame_{frame}.vision_pixels"])
    features = model.pyramid_encoder(inputs.pyramid[None])
    for level in ("res2", "res3", "res4", "res5"):
        close(f"frame {frame} Swin {level}", features[level], reference[f"frame_{frame}.{level}"])
    visual = model.vanilla_encoder(inputs.vision[None])
    close(f"frame {frame} projected SigLIP tokens", visual, reference[f"frame_{frame}.visual"])
    pixels = model.predictor.pixel_decoder(features)
    close(f"frame {frame} mask features", pixels.mask_features, reference[f"frame_{frame}.mask_features"])
    for i, level in enumerate(pixels.multi_scale_features):
        close(f"frame {frame} pixel decoder level {i}", level, reference[f"frame_{frame}.multi_scale_{i}"])

    fine = model.fine_grained_perceiver(features, latents)
    close(f"{prefix} FVP tokens", fine, reference[f"{prefix}.fine"])
    region = None
    if command.task == "visual_prompt":
        masks = region_masks(command.boxes, command.points, inputs.image_size, config.vision_image_size,
                             config.region_point_radius, released=True)
        assert np.array_equal(masks[0], reference[f"{prefix}.region_mask"].numpy().astype(bool))
        region = model._region_tokens(visual, [region_points(command.boxes, command.points, inputs.image_size,
                                                             config)])
        close(f"{prefix} region token", region, reference[f"{prefix}.region_tokens"])
    tokens = build_token_batch(tokenizer, config, [command], video=True)
    embeds = splice_embeddings(tokens, model.llm.get_input_embeddings()(tokens.input_ids), visual, fine,
                               model.seg_query, region)
    close(f"{prefix} spliced sequence", embeds, reference[f"{prefix}.inputs_embeds"])
    hidden = language_model_hidden_states(model.llm, embeds, tokens.attention_mask)
    close(f"{prefix} Phi hidden states", hidden, reference[f"{prefix}.hidden"])
    recognition: EntityRecognition = model.entity_recognition
    close(f"{prefix} E_Q", recognition.query_embeddings(hidden, tokens), reference[f"{prefix}.E_Q"])
    prompts = recognition.prompt_embeddings(recognition.pool_prompts(hidden, tokens), tokens.task)
    close(f"{prefix} E_P", prompts, reference[f"{prefix}.E_P"])
    next_latents = model.fine_grained_perceiver.next_latents(hidden[tokens.kind == FINE_GRAINED][None])
    if f"{prefix}.next_latents" in reference:
        close(f"{prefix} next-frame latents", next_latents, reference[f"{prefix}.next_latents"])

    out = model(inputs.pyramid[None], inputs.vision[None], tokens, temporal_latents=latents,
                region_tokens=region)
    predictions = out.predictions
    close(f"{prefix} mask logits", predictions.mask_logits, reference[f"{prefix}.pred_masks"])
    if command.task in ("referring", "reasoning"):
        close(f"{prefix} refer logits", predictions.refer_logits, reference[f"{prefix}.refer_logits"])
    elif command.task == "open_vocabulary":
        close(f"{prefix} class logits (+ background)", predictions.class_logits,
              reference[f"{prefix}.class_logits"])
    else:
        close(f"{prefix} region logits", predictions.region_logits, reference[f"{prefix}.region_logits"])
    assert torch.equal(out.temporal_latents, next_latents)
    return inputs, predictions, out.temporal_latents


def check_answer(name, found, reference, meta, prefix):
    """found: every query's detection (postprocess with threshold 0); the release's scores and top-1."""
    case = meta["cases"][prefix]
    scores = reference[f"{prefix}.scores"]
    ours = torch.zeros_like(scores)
    ours[found.indices] = found.scores
    error = (ours - scores).abs().max().item()
    assert error <= TOLERANCE, f"{name}: scores differ from the release by {error:.3g}"
    assert int(found.indices[0]) == case["top1_query"], f"{name}: top-1 query {int(found.indices[0])}"
    mask, theirs = found.masks[0].numpy(), reference[f"{prefix}.top1_mask"].numpy().astype(bool)
    iou = (mask & theirs).sum() / max(1, (mask | theirs).sum())
    assert iou >= 0.99, f"{name}: top-1 mask IoU {iou:.4f} with the release"
    assert theirs.sum() > 0


def geometry(model, inputs):
    size = model.config.pyramid_image_size
    return dict(padded_size=(size, size), valid_size=inputs.valid_size, image_size=inputs.image_size,
                score_threshold=0.0, max_instances=model.config.predictor_config["num_queries"],
                scores_at_image_resolution=True)


def test_referring_two_frames_match_the_release(released):
    model, tokenizer, reference, meta = released
    command = commands(meta)["referring"]
    latents = None
    for t in range(2):
        image = reference[f"image_{t}"].numpy()
        prefix = f"referring_{t}"
        if latents is not None:
            close(f"{prefix} latents in", latents, reference[f"{prefix}.latents_in"])
        inputs, predictions, latents = run_stages(model, tokenizer, reference, image, t, prefix, command, latents)
        found = postprocess(predictions.refer_logits[0], predictions.mask_logits[0], **geometry(model, inputs))
        check_answer(prefix, found, reference, meta, prefix)


def test_open_vocabulary_matches_the_release_with_background(released):
    model, tokenizer, reference, meta = released
    command = commands(meta)["open_vocabulary"]
    inputs, predictions, _ = run_stages(model, tokenizer, reference, reference["image_0"].numpy(), 0,
                                        "open_vocabulary", command, None)
    probabilities = predictions.class_logits[0].softmax(-1)[:, :-1]
    best, labels = probabilities.max(-1)
    assert torch.equal(labels, reference["open_vocabulary.labels"])
    found = postprocess(torch.logit(best), predictions.mask_logits[0], **geometry(model, inputs))
    check_answer("open vocabulary", found, reference, meta, "open_vocabulary")


def test_reasoning_frame_prompt_matches_the_release(released):
    model, tokenizer, reference, meta = released
    inputs, predictions, _ = run_stages(model, tokenizer, reference, reference["image_0"].numpy(), 0,
                                        "reasoning", commands(meta)["reasoning"], None)
    found = postprocess(predictions.refer_logits[0], predictions.mask_logits[0], **geometry(model, inputs))
    check_answer("reasoning", found, reference, meta, "reasoning")


@pytest.mark.parametrize("case", ["visual_prompt", "visual_prompt_point"])
def test_box_and_point_prompts_match_the_release(released, case):
    model, tokenizer, reference, meta = released
    inputs, predictions, _ = run_stages(model, tokenizer, reference, reference["image_0"].numpy(), 0,
                                        case, commands(meta)[case], None)
    found = postprocess(predictions.region_logits[0, 0], predictions.mask_logits[0], **geometry(model, inputs))
    check_answer(case, found, reference, meta, case)


def test_session_runs_every_task_as_the_release(released):
    """The streaming session on the released-format directory, every task: the referring top-1 of
    both frames (latents carried), the reasoning and point-prompt top-1, the open-vocabulary top-1
    with its category."""
    model, tokenizer, reference, meta = released
    session = SegmentationSession(model, tokenizer, score_threshold=0.9,  # above every score here
                                  llm_every_n_frames=1)  # the release runs its language side on every frame
    session.set_command(commands(meta)["referring"])
    for t in range(2):
        result = session.process(reference[f"image_{t}"].numpy())
        assert len(result.instances) == 1, "the release always answers a referring prompt with its top-1"
        instance, case = result.instances[0], meta["cases"][f"referring_{t}"]
        assert abs(instance.score - case["top1_score"]) <= TOLERANCE
        theirs = reference[f"referring_{t}.top1_mask"].numpy().astype(bool)
        assert (instance.mask & theirs).sum() / (instance.mask | theirs).sum() >= 0.99
    for name in ("reasoning", "visual_prompt_point", "open_vocabulary"):
        session = SegmentationSession(model, tokenizer, score_threshold=0.0 if name != "reasoning" else 0.9,
                                      llm_every_n_frames=1)
        session.set_command(commands(meta)[name])
        best, case = session.process(reference["image_0"].numpy()).instances[0], meta["cases"][name]
        assert abs(best.score - case["top1_score"]) <= TOLERANCE, name
        theirs = reference[f"{name}.top1_mask"].numpy().astype(bool)
        assert (best.mask & theirs).sum() / (best.mask | theirs).sum() >= 0.99, name
    assert best.class_id == case["top1_class"] and best.label == case["categories"][case["top1_class"]]


def test_released_config_json_is_read(tmp_path):
    """Values without a weight shape come from config.json; sizes the release hard-codes come from the
    tensor shapes; the release's conventions apply."""
    released = json.loads((FIXTURE / "config.json").read_text())
    released.update(hidden_act="gelu", layer_norm_eps=1e-3, rope_theta=500.0)
    released["vision_config"]["vision_tower"].update(mm_vision_select_layer=-1, layer_norm_eps=1e-4, hidden_act="gelu")
    (tmp_path / "config.json").write_text(json.dumps(released))
    (tmp_path / "model.safetensors").symlink_to(FIXTURE / "model.safetensors")
    with ReleasedCheckpoint(tmp_path) as checkpoint:
        config = released_config(tmp_path, checkpoint)
    llm, vision = config.llm(), config.vision()
    assert (llm.hidden_act, llm.layer_norm_eps, llm.hidden_size, llm.num_hidden_layers) == ("gelu", 1e-3, 32, 2)
    assert llm.rope_parameters["rope_theta"] == 500.0
    assert (vision.hidden_act, vision.layer_norm_eps, vision.num_hidden_layers) == ("gelu", 1e-4, 3)
    assert (config.vision_feature_layer, config.vision_image_size, config.vision_grid) == (-1, 56, 7)
    assert config.pyramid_config | {"image_size": 0} == dict(
        image_size=0, patch_size=4, embed_dim=16, depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4], window_size=3,
        drop_path_rate=0.3)
    assert config.predictor_config == dict(hidden_dim=32, num_queries=8, encoder_layers=2, encoder_ffn_dim=1024,
                                           decoder_layers=3, decoder_ffn_dim=64, num_heads=8, num_points=4,
                                           reid_dim=32)
    assert (config.num_fine_grained_tokens, config.perceiver_dim, config.perceiver_dim_head) == (8, 32, 4)
    assert (config.embedding_rows, config.llm_config["vocab_size"], config.pyramid_image_size) == (62, 64, 1024)
    assert (config.pyramid_padding, config.open_vocabulary_scoring, config.answer_always, config.scores_at) == (
        "grey", "softmax_background", True, "image")
