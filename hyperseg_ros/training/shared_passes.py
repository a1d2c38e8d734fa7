"""Image-only passes run once per scene when a batch carries several commands per scene.

The Swin pyramid, the pixel decoder and the SigLIP encoder see only the image, so the
`commands_per_scene` adjacent samples of a scene (training.dataset) give them identical inputs.
Forward hooks run those modules on one copy per scene and repeat their outputs; autograd sums the
repeated gradients, so every loss and gradient equals that of the unshared pass (up to float
summation order) for 1/commands_per_scene of the cost of these modules. The model's code and
state_dict are untouched: the hooks live only inside the `with` block.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers.models.mask2former.modeling_mask2former import Mask2FormerPixelDecoderOutput

from hyperseg_ros.model.hyperseg import HyperSeg


def _first_of_each(x, repeats: int):
    if torch.is_tensor(x):
        if x.shape[0] % repeats:
            raise ValueError(f"batch of {x.shape[0]} is not a whole number of scenes of {repeats} commands")
        return x[::repeats]
    if isinstance(x, dict):
        return {k: _first_of_each(v, repeats) for k, v in x.items()}
    return x


def _repeat(x, repeats: int):
    if torch.is_tensor(x):
        return x.repeat_interleave(repeats, 0)
    if isinstance(x, Mask2FormerPixelDecoderOutput):
        return Mask2FormerPixelDecoderOutput(
            mask_features=_repeat(x.mask_features, repeats),
            multi_scale_features=tuple(_repeat(f, repeats) for f in x.multi_scale_features))
    if isinstance(x, dict):
        return {k: _repeat(v, repeats) for k, v in x.items()}
    raise TypeError(f"cannot repeat a {type(x).__name__}")


@contextmanager
def shared_image_passes(model: HyperSeg, repeats: int):
    """Within the block, each image-only module of `model` runs on every `repeats`-th sample and
    its output is repeated `repeats` times (samples of a scene must be adjacent)."""
    if repeats == 1:
        yield
        return
    modules = (model.pyramid_encoder, model.vanilla_encoder, model.predictor.pixel_decoder)
    handles = []
    for module in modules:
        handles.append(module.register_forward_pre_hook(
            lambda _m, args: tuple(_first_of_each(a, repeats) for a in args)))
        handles.append(module.register_forward_hook(lambda _m, _args, out: _repeat(out, repeats)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
