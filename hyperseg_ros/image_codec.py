"""sensor_msgs Image / CompressedImage <-> RGB numpy arrays (the only image conversion module).

Messages are duck-typed (`encoding`, `height`, `width`, `step`, `data`; `format`, `data`), so
rclpy messages, rosbags messages and test doubles all work. Decoding is zero-copy for rgb8.
Compressed frames are decoded with Pillow: it reads width and height from the header first (a
small file can claim a huge image), and it reports corrupt data as an exception, where OpenCV's
codecs print their own lines to stderr.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import JpegImagePlugin, PngImagePlugin

# encoding -> (channels, OpenCV conversion to RGB or None when already RGB)
ENCODINGS: dict[str, tuple[int, int | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
}
MAX_PIXELS = 4096 * 4096  # larger frames are rejected: they are a bug upstream, not a camera
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """A frame that cannot be decoded. `reason` is a short key used in diagnostics counters."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _as_bytes_array(data) -> np.ndarray:
    """Message data (bytes, array.array, memoryview, list, numpy) as a flat uint8 array, no copy when possible."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else data.astype(np.uint8).reshape(-1)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def check_image(msg, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ImageError unless `msg` is a well-formed sensor_msgs/Image (O(1): no pixel is read).

    The node calls it on receipt, so a malformed frame never displaces a good one waiting for
    inference; `image_to_rgb` calls it again.
    """
    encoding = str(msg.encoding).lower()
    if encoding not in ENCODINGS:
        raise ImageError("encoding", f"unsupported encoding {msg.encoding!r}; expected one of {', '.join(ENCODINGS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError("empty", f"empty image ({width}x{height})")
    if height * width > max_pixels:
        raise ImageError("too_large", f"image {width}x{height} exceeds {max_pixels} pixels")
    channels = ENCODINGS[encoding][0]
    if step < width * channels:
        raise ImageError("size_mismatch", f"step {step} < width {width} x {channels} channels")
    size = msg.data.nbytes if isinstance(msg.data, np.ndarray) else len(msg.data)
    if size != step * height:
        raise ImageError("size_mismatch", f"data has {size} bytes, expected step {step} x height {height}")


def image_to_rgb(msg, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/Image into an RGB array.

    Returns: uint8 [H, W, 3]. For rgb8 it is a view of `msg.data` (row padding from `step` is
    skipped by strides, so it may be non-contiguous); other encodings are converted with OpenCV.
    Raises ImageError for an unknown encoding, an empty or huge image, or a step/size mismatch.
    """
    check_image(msg, max_pixels)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    channels, conversion = ENCODINGS[str(msg.encoding).lower()]
    rows = _as_bytes_array(msg.data).reshape(height, step)[:, : width * channels]
    pixels = rows.reshape(height, width, channels) if channels > 1 else rows
    if conversion is None:
        return pixels
    return cv2.cvtColor(np.ascontiguousarray(pixels), conversion)


def _open_compressed(msg, max_pixels: int):
    """A Pillow image of `msg` with only its header read; raises ImageError unless it is jpeg or
    png (told apart by their magic bytes) with a readable header of at most `max_pixels`."""
    data = _as_bytes_array(msg.data)
    head = data[:8].tobytes()
    if not head:
        raise ImageError("empty", "empty compressed image")
    if head.startswith(_JPEG_MAGIC):
        image_file = JpegImagePlugin.JpegImageFile
    elif head.startswith(_PNG_MAGIC):
        image_file = PngImagePlugin.PngImageFile
    else:
        raise ImageError("encoding", f"compressed format {msg.format!r} is neither jpeg nor png")
    try:  # the plugin class reads the header only (PILImage.open would also warn about big images)
        image = image_file(io.BytesIO(data))
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError("decode", f"cannot read the {image_file.format} header ({data.size} bytes): {err}") from None
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError("empty", f"empty image ({width}x{height})")
    if width * height > max_pixels:  # rejected before a single pixel is decoded
        raise ImageError("too_large", f"{image_file.format} header says {width}x{height}, over {max_pixels} pixels")
    return image


def check_compressed(msg, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ImageError unless `msg` holds jpeg or png data whose header gives a size of at most
    `max_pixels` (the header only: no pixel is decoded)."""
    _open_compressed(msg, max_pixels)


def compressed_to_rgb(msg, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg or png; 16-bit png keeps its high byte).

    Returns: uint8 [H, W, 3] RGB. Raises ImageError when empty, not jpeg/png, corrupt, or when its
    header gives more than `max_pixels` (checked before decoding).
    """
    image = _open_compressed(msg, max_pixels)
    try:
        image.load()
        if image.mode in ("I;16", "I;16B", "I"):  # 16-bit grey
            return cv2.cvtColor((np.asarray(image, dtype=np.uint32) >> 8).astype(np.uint8), cv2.COLOR_GRAY2RGB)
        return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as err:
        raise ImageError("decode", f"cannot decode {image.format} data ({image.size[0]}x{image.size[1]}): "
                                   f"{err}") from None
    finally:
        image.close()


def rgb_to_image(rgb: np.ndarray, header=None, encoding: str = "rgb8"):
    """Build a sensor_msgs/Image from uint8 RGB [H, W, 3] (or mono [H, W] for mono8).

    `encoding` picks the wire layout (rgb8, bgr8, rgba8, bgra8, mono8); data is assigned as
    bytes, never a memoryview (element-wise copy in rclpy: ~170 ms for 720p).
    """
    from sensor_msgs.msg import Image

    if rgb.dtype != np.uint8:
        raise ImageError("encoding", f"expected uint8 pixels, got {rgb.dtype}")
    if encoding == "rgb8":
        pixels = rgb
    elif encoding == "mono8":
        pixels = rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    else:
        to = {"bgr8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGB2RGBA, "bgra8": cv2.COLOR_RGB2BGRA}
        if encoding not in to:
            raise ImageError("encoding", f"unsupported encoding {encoding!r}")
        pixels = cv2.cvtColor(np.ascontiguousarray(rgb), to[encoding])
    pixels = np.ascontiguousarray(pixels)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.step = int(pixels.strides[0])
    msg.data = pixels.tobytes()
    return msg


def rgb_to_compressed(rgb: np.ndarray, header=None, fmt: str = "jpeg", quality: int = 90):
    """Build a sensor_msgs/CompressedImage (`fmt` jpeg or png) from uint8 RGB [H, W, 3]."""
    from sensor_msgs.msg import CompressedImage

    ext = {"jpeg": ".jpg", "png": ".png"}[fmt]
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageError("encoding", f"OpenCV could not encode {fmt}")
    msg = CompressedImage()
    if header is not None:
        msg.header = header
    msg.format = fmt
    msg.data = buf.tobytes()
    return msg
