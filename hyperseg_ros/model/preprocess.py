"""Camera image -> the two model inputs: the padded pyramid (Swin) image and the SigLIP image.

Pyramid branch (detectron2 mapper of the release): resize the longest side to
`pyramid_image_size`, pad bottom/right to a square, ImageNet mean/std on the 0-255 scale; the
unpadded size is kept so masks can be cropped back. SigLIP branch: square resize, (x/255-0.5)/0.5.
The config's `image_resize` and `pyramid_padding` say how the model was trained to see them: as
released (PIL resizes, grey 128 padding) or as the embedded model (OpenCV resizes, mean padding).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from .config import HyperSegConfig

IMAGENET_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
IMAGENET_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
PAD_GREY = 128.0  # detectron2 FixedSizeCrop's pad value, applied before normalising


@dataclass
class ModelInput:
    """One image ready for HyperSeg.

    pyramid: [3, S, S] float32, S = pyramid_image_size; normalised grey 128 (or the mean) in the padding.
    vision: [3, s, s] float32 in [-1, 1], s = vision_image_size.
    valid_size: (h, w) of the image inside `pyramid` (pixels, before padding).
    image_size: (H, W) of the original image.
    """

    pyramid: torch.Tensor
    vision: torch.Tensor
    valid_size: tuple[int, int]
    image_size: tuple[int, int]


def preprocess_image(image_rgb: np.ndarray, config: HyperSegConfig) -> ModelInput:
    """image_rgb: [H, W, 3] uint8 RGB -> ModelInput (CPU tensors)."""
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got {image_rgb.shape} {image_rgb.dtype}")
    height, width = image_rgb.shape[:2]
    size = config.pyramid_image_size
    released = config.image_resize == "pil"
    if released:  # detectron2 ResizeShortestEdge(size, max_size=size): PIL bilinear
        h, w = _resize_shortest_edge(height, width, size)
        resized = np.asarray(Image.fromarray(image_rgb).resize((w, h), Image.BILINEAR), dtype=np.float32)
    else:
        scale = size / max(height, width)
        h, w = min(size, max(1, round(height * scale))), min(size, max(1, round(width * scale)))
        # INTER_AREA when shrinking avoids aliasing; INTER_LINEAR when enlarging.
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(image_rgb, (w, h), interpolation=interp).astype(np.float32)
    pad = PAD_GREY if config.pyramid_padding == "grey" else IMAGENET_MEAN
    pyramid = np.empty((size, size, 3), dtype=np.float32)
    pyramid[...] = pad
    pyramid[:h, :w] = resized
    pyramid = (pyramid - IMAGENET_MEAN) / IMAGENET_STD

    vsize = config.vision_image_size
    if released:  # SiglipImageProcessor: PIL bicubic (antialiased when shrinking)
        vision = np.asarray(Image.fromarray(image_rgb).resize((vsize, vsize), Image.BICUBIC), dtype=np.float32)
    else:
        vinterp = cv2.INTER_AREA if vsize < min(height, width) else cv2.INTER_CUBIC
        vision = cv2.resize(image_rgb, (vsize, vsize), interpolation=vinterp).astype(np.float32)
    vision = vision / 127.5 - 1.0
    return ModelInput(
        pyramid=torch.from_numpy(pyramid).permute(2, 0, 1).contiguous(),
        vision=torch.from_numpy(vision).permute(2, 0, 1).contiguous(),
        valid_size=(h, w),
        image_size=(height, width),
    )


def _resize_shortest_edge(height: int, width: int, size: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge(size, max_size=size) output (h, w): the long side becomes `size`."""
    scale = size / min(height, width)
    h, w = (size, scale * width) if height < width else (scale * height, size)
    if max(h, w) > size:
        scale = size / max(h, w)
        h, w = h * scale, w * scale
    return int(h + 0.5), int(w + 0.5)
