"""Does a model name categories by their name or by their place in the list? Prints JSON.

On `val` open-vocabulary scenes with 3+ categories:
- cosine between the category embeddings E_P of neighbouring places in one list, and between the
  pooled LLM states they are projected from (a model that reads the place, not the name, gives
  near-identical neighbours);
- cosine between the embeddings of one name at two places (the same list reversed): 1 when only
  the name counts;
- per place in the list, the mean of the best query's class logit (it should not fall with the place);
- per found object (a query with mask IoU >= 0.5), the spread of its class logits across the list
  (max - min): a model that does not discriminate between names has a small spread.

    python -P scripts/diagnose_categories.py --model models/hyperseg-world --scenes 60
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np
import torch

from hyperseg_ros.model import load_model
from hyperseg_ros.model.multimodal_sequence import build_token_batch
from hyperseg_ros.model.postprocess import upsample_masks
from hyperseg_ros.model.preprocess import preprocess_image
from hyperseg_ros.training.metrics import iou
from hyperseg_ros.world.commands import sample_command
from hyperseg_ros.world.scene import draw_scene, random_image_size
from hyperseg_ros.world.splits import sample_rng


@torch.inference_mode()
def _pass(model, tokenizer, scene, command):
    inputs = preprocess_image(scene.image, model.config)
    tokens = build_token_batch(tokenizer, model.config, [command], video=True)
    out = model(inputs.pyramid[None], inputs.vision[None], tokens)
    padded = model.config.pyramid_image_size
    masks = upsample_masks(out.predictions.mask_logits[0], padded_size=(padded, padded), valid_size=inputs.valid_size,
                           image_size=inputs.image_size) > 0
    return out.prompt_embeddings[0], out.predictions.class_logits[0], masks.numpy(), out.pooled_prompts[0]


def diagnose(model, tokenizer, scenes: int) -> dict:
    neighbour, pooled_neighbour, same_name, spread = [], [], [], []
    by_place: dict[int, list[float]] = {}
    i = 0
    while len(neighbour) < scenes and i < 20 * scenes:
        rng = sample_rng("val", i, stream=2)
        i += 1
        scene = draw_scene(rng, *random_image_size(rng, (120, 480)))
        wc = sample_command(rng, scene, "open_vocabulary")
        names = wc.command.categories
        if len(names) < 3:
            continue
        embed, logits, masks, pooled = _pass(model, tokenizer, scene, wc.command)
        unit = torch.nn.functional.normalize(embed.float(), dim=-1)
        neighbour.append(float((unit[:-1] * unit[1:]).sum(-1).mean()))
        pooled_unit = torch.nn.functional.normalize(pooled.float(), dim=-1)
        pooled_neighbour.append(float((pooled_unit[:-1] * pooled_unit[1:]).sum(-1).mean()))
        reversed_command = replace(wc.command, categories=tuple(reversed(names)))
        embed_r = _pass(model, tokenizer, scene, reversed_command)[0]
        unit_r = torch.nn.functional.normalize(embed_r.float(), dim=-1).flip(0)
        same_name.append(float((unit * unit_r).sum(-1).mean()))
        for place in range(len(names)):
            by_place.setdefault(place, []).append(float(logits[:, place].max()))
        index = {o.identity: k for k, o in enumerate(scene.objects)}
        for ids in wc.category_targets:
            for identity in ids:
                gt = scene.masks[index[identity]]
                best = max(range(len(masks)), key=lambda q: iou(masks[q], gt))
                if iou(masks[best], gt) >= 0.5:
                    spread.append(float(logits[best].max() - logits[best].min()))
    return {"scenes": len(neighbour), "category_prompts": model.config.category_prompts,
            "neighbour_cosine": round(float(np.mean(neighbour)), 3),
            "neighbour_cosine_pooled_llm": round(float(np.mean(pooled_neighbour)), 3),
            "same_name_other_place_cosine": round(float(np.mean(same_name)), 3),
            "best_class_logit_by_place": {p + 1: round(float(np.mean(v)), 2) for p, v in sorted(by_place.items())
                                          if len(v) >= 5},
            "found_objects": len(spread), "class_logit_spread_median": round(float(np.median(spread)), 2)
            if spread else None}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="")
    p.add_argument("--scenes", type=int, default=60)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(diagnose(*load_model(args.model), args.scenes), indent=1))


if __name__ == "__main__":
    main()
