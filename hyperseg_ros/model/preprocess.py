"""Camera image -> the two model inputs: the padded pyramid (Swin) image and the SigLIP image.

Pyramid branch (detectron2 mapper of the release): resize the longest side to
`pyramid_image_size`, pad bottom/right to a square, ImageNet mean/std on the 0-255 scale; the
unpadded size is kept so masks can be cropped back. SigLIP branch: square resize, (x/255-0.5)/0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .config import HyperSegConfig

IMAGENET_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
IMAGENET_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


@dataclass
class ModelInput:
    """One image ready for HyperSeg.

    pyramid: [3, S, S] float32, S = pyramid_image_size; zeros (= the mean) in the padding.
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
    scale = size / max(height, width)
    h, w = min(size, max(1, round(height * scale))), min(size, max(1, round(width * scale)))
    # INTER_AREA when shrinking avoids aliasing; INTER_LINEAR when enlarging.
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image_rgb, (w, h), interpolation=interp).astype(np.float32)
    pyramid = np.zeros((size, size, 3), dtype=np.float32)
    pyramid[:h, :w] = (resized - IMAGENET_MEAN) / IMAGENET_STD

    vsize = config.vision_image_size
    vinterp = cv2.INTER_AREA if vsize < min(height, width) else cv2.INTER_CUBIC
    vision = cv2.resize(image_rgb, (vsize, vsize), interpolation=vinterp).astype(np.float32)
    vision = vision / 127.5 - 1.0
    return ModelInput(
        pyramid=torch.from_numpy(pyramid).permute(2, 0, 1).contiguous(),
        vision=torch.from_numpy(vision).permute(2, 0, 1).contiguous(),
        valid_size=(h, w),
        image_size=(height, width),
    )
