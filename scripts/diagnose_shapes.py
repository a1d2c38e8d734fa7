"""Can the model see shapes? Linear probes of an object's shape and colour on what the model computes. Prints JSON.

On `val` scenes, for each object with a found query (mask IoU >= 0.5, command: every shape of the world):
- the decoder query (what the class score reads) and its projection CLASS_proj;
- the image features averaged under the object's true mask: Swin levels res2..res5, the pixel decoder's
  scales and its stride-4 mask features;
- the mask-shape encoder's output alone, where the model has one (model/mask_shape.py);
- a baseline that reads only the mask's outline: its 7 Hu moments;
and how often the model's own best category for that query is the object's shape.
A probe is a multinomial logistic regression fitted on 70% of the objects and scored on the rest (chance:
1/8 for shapes). A probe near chance means the features carry no such information.

    python -P scripts/diagnose_shapes.py --model models/hyperseg-world --scenes 250
"""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import torch

from hyperseg_ros.command import Command
from hyperseg_ros.model import load_model
from hyperseg_ros.model.multimodal_sequence import build_token_batch
from hyperseg_ros.model.postprocess import upsample_masks
from hyperseg_ros.model.preprocess import preprocess_image
from hyperseg_ros.training.metrics import iou
from hyperseg_ros.world.scene import COLOURS, SHAPES, draw_scene, random_image_size
from hyperseg_ros.world.splits import sample_rng


def probe(features: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """Held-out accuracy of a logistic regression (L-BFGS, light L2) on standardised features."""
    x, y = torch.tensor(features, dtype=torch.float32), torch.tensor(labels)
    cut = int(0.7 * len(y))
    x = (x - x[:cut].mean(0)) / (x[:cut].std(0) + 1e-6)
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x[:cut] @ w + b, y[:cut]) + 1e-2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return round(float(((x[cut:] @ w + b).argmax(1) == y[cut:]).float().mean()), 3)


def collect(model, tokenizer, scenes: int) -> tuple[dict[str, list], list[int], list[int]]:
    seen: dict = {}
    heads = model.predictor.heads
    class_logits = heads.class_logits

    def spy(queries, embeddings, mask):
        seen["query"] = queries
        seen["logits"] = class_logits(queries, embeddings, mask)
        return seen["logits"]

    heads.class_logits = spy
    model.predictor.pixel_decoder.register_forward_hook(lambda m, i, o: seen.update(pixels=o))
    model.pyramid_encoder.register_forward_hook(lambda m, i, o: seen.update(levels=o))
    if model.predictor.mask_shape is not None:
        model.predictor.mask_shape.register_forward_hook(lambda m, i, o: seen.update(mask_shape=o))
    command = Command(task="open_vocabulary", categories=tuple(SHAPES))
    feats: dict[str, list] = {}
    shapes, colours, named = [], [], []
    for i in range(scenes):
        rng = sample_rng("val", i, stream=2)
        scene = draw_scene(rng, *random_image_size(rng, (120, 480)))
        inputs = preprocess_image(scene.image, model.config)
        out = model(inputs.pyramid[None], inputs.vision[None],
                    build_token_batch(tokenizer, model.config, [command], video=True))
        size, (vh, vw) = model.config.pyramid_image_size, inputs.valid_size
        masks = (upsample_masks(out.predictions.mask_logits[0], padded_size=(size, size), valid_size=inputs.valid_size,
                                image_size=inputs.image_size) > 0).numpy()
        maps = {**seen["levels"], **{f"pixel_decoder_{k}": f for k, f in enumerate(seen["pixels"].multi_scale_features)},
                "mask_features": seen["pixels"].mask_features}
        for obj, gt in zip(scene.objects, scene.masks):
            ious = [iou(m, gt) for m in masks]
            best = int(np.argmax(ious))
            if ious[best] < 0.5:
                continue
            padded = np.zeros((size, size), np.float32)
            padded[:vh, :vw] = cv2.resize(gt.astype(np.float32), (vw, vh), interpolation=cv2.INTER_AREA)
            feats.setdefault("decoder_query", []).append(seen["query"][0, best].float().numpy())
            if "mask_shape" in seen:
                feats.setdefault("mask-shape encoder alone", []).append(seen["mask_shape"][0, best].float().numpy())
            # what the answer reads: the name scorer's logits where the model has one, else the class head's
            answer = out.predictions.name_logits if out.predictions.name_logits is not None else out.predictions.class_logits
            named.append(int(answer[0, best].argmax()) == SHAPES.index(obj.shape))
            feats.setdefault("CLASS_proj(query)", []).append(heads.CLASS_proj(seen["query"][0, best]).float().numpy())
            for name, fmap in maps.items():
                h, w = fmap.shape[-2:]
                weight = torch.from_numpy(cv2.resize(padded, (w, h), interpolation=cv2.INTER_AREA))
                weight = weight if weight.sum() > 0 else torch.ones(h, w)
                feats.setdefault(f"mean under mask: {name}", []).append(
                    ((fmap[0].float() * weight).sum((1, 2)) / weight.sum()).numpy())
            hu = cv2.HuMoments(cv2.moments(padded)).ravel()
            feats.setdefault("baseline: Hu moments of the true mask", []).append(-np.sign(hu) * np.log10(np.abs(hu) + 1e-30))
            shapes.append(SHAPES.index(obj.shape))
            colours.append(list(COLOURS).index(obj.colour))
    return feats, shapes, colours, named


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="")
    p.add_argument("--scenes", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_model(args.model)
    with torch.inference_mode():
        feats, shapes, colours, named = collect(model, tokenizer, args.scenes)
    shapes, colours = np.array(shapes), np.array(colours)
    print(json.dumps({
        "objects": len(shapes), "chance_shape": round(1 / len(SHAPES), 3),
        "model_names_the_shape": round(float(np.mean(named)), 3),
        "shape_probe": {name: probe(np.array(f), shapes, len(SHAPES)) for name, f in feats.items()},
        "colour_probe_decoder_query": probe(np.array(feats["decoder_query"]), colours, len(COLOURS)),
    }, indent=1))


if __name__ == "__main__":
    main()
