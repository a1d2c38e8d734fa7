"""sensor_msgs Image / CompressedImage <-> RGB numpy arrays (the only image conversion module).

Messages are duck-typed (`encoding`, `height`, `width`, `step`, `data`, optional `is_bigendian`;
`format`, `data`), so rclpy messages, rosbags messages and test doubles all work. Decoding is
zero-copy for rgb8. The encodings of real cameras are served (packed YUV 4:2:2 of USB cameras,
Bayer mosaics of industrial ones, NV21, OpenCV's 8UC1/8UC3, 16-bit colour and mono scaled to 8
bits); depth and float images are not pictures the model can read and are rejected, saying so.
Compressed frames are decoded with Pillow: it reads width and height from the header first (a
small file can claim a huge image), and it reports corrupt data as an exception, where OpenCV's
codecs print their own lines to stderr.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image as PILImage
from PIL import JpegImagePlugin, PngImagePlugin


@dataclass(frozen=True)
class Layout:
    """How an encoding lays out its pixels: `channels` values per pixel in a row (2 for packed
    YUV 4:2:2), each of `bits`; `rows` data rows per image row (1.5 for NV21's chroma plane);
    `even`: width and height must be even (chroma shared by 2 pixels); `conversion`: OpenCV code
    to RGB, None when already RGB."""

    channels: int
    conversion: int | None
    bits: int = 8
    rows: float = 1.0
    even: bool = False


_UYVY, _YUYV = Layout(2, cv2.COLOR_YUV2RGB_UYVY, even=True), Layout(2, cv2.COLOR_YUV2RGB_YUY2, even=True)
# encoding (sensor_msgs/image_encodings, lower case) -> layout
ENCODINGS: dict[str, Layout] = {
    "rgb8": Layout(3, None), "bgr8": Layout(3, cv2.COLOR_BGR2RGB), "8uc3": Layout(3, cv2.COLOR_BGR2RGB),
    "rgba8": Layout(4, cv2.COLOR_RGBA2RGB), "bgra8": Layout(4, cv2.COLOR_BGRA2RGB),
    "8uc4": Layout(4, cv2.COLOR_BGRA2RGB),
    "mono8": Layout(1, cv2.COLOR_GRAY2RGB), "8uc1": Layout(1, cv2.COLOR_GRAY2RGB),
    "yuv422": _UYVY, "uyvy": _UYVY, "yuyv": _YUYV, "yuv422_yuy2": _YUYV,  # ROS's yuv422 is UYVY
    "nv21": Layout(1, cv2.COLOR_YUV2RGB_NV21, rows=1.5, even=True),
    "bayer_rggb8": Layout(1, cv2.COLOR_BayerRGGB2RGB), "bayer_bggr8": Layout(1, cv2.COLOR_BayerBGGR2RGB),
    "bayer_gbrg8": Layout(1, cv2.COLOR_BayerGBRG2RGB), "bayer_grbg8": Layout(1, cv2.COLOR_BayerGRBG2RGB),
    "rgb16": Layout(3, None, 16), "bgr16": Layout(3, cv2.COLOR_BGR2RGB, 16),
    "rgba16": Layout(4, cv2.COLOR_RGBA2RGB, 16), "bgra16": Layout(4, cv2.COLOR_BGRA2RGB, 16),
    "mono16": Layout(1, cv2.COLOR_GRAY2RGB, 16),
}
# not pictures: a distance or a float per pixel has no colour for the model to read
NOT_PICTURES = ("16uc1", "32fc1", "16sc1", "32sc1", "64fc1")
WRITE_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")  # what rgb_to_image writes
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
    if encoding in NOT_PICTURES:
        raise ImageError("encoding", f"encoding {msg.encoding!r} is a depth or float image, not a picture: "
                                     "not served (publish the camera's colour or mono image)")
    if encoding not in ENCODINGS:
        raise ImageError("encoding", f"unsupported encoding {msg.encoding!r}; expected one of {', '.join(ENCODINGS)}")
    layout = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageError("empty", f"empty image ({width}x{height})")
    if height * width > max_pixels:
        raise ImageError("too_large", f"image {width}x{height} exceeds {max_pixels} pixels")
    if layout.even and (width % 2 or (layout.rows != 1 and height % 2)):
        raise ImageError("size_mismatch", f"{encoding} needs an even {'width' if width % 2 else 'height'}, "
                                          f"not {width}x{height}")
    row_bytes = width * layout.channels * layout.bits // 8
    if step < row_bytes:
        raise ImageError("size_mismatch", f"step {step} < width {width} x {layout.channels} channels "
                                          f"x {layout.bits // 8} bytes")
    size = msg.data.nbytes if isinstance(msg.data, np.ndarray) else len(msg.data)
    rows = int(height * layout.rows)
    if size != step * rows:
        raise ImageError("size_mismatch", f"data has {size} bytes, expected step {step} x {rows} rows")


def image_to_rgb(msg, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/Image into an RGB array.

    Returns: uint8 [H, W, 3]. For rgb8 it is a view of `msg.data` (row padding from `step` is
    skipped by strides, so it may be non-contiguous); other encodings are converted with OpenCV.
    Raises ImageError for an unknown encoding, an empty or huge image, or a step/size mismatch.
    """
    check_image(msg, max_pixels)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    layout = ENCODINGS[str(msg.encoding).lower()]
    row_bytes = width * layout.channels * layout.bits // 8
    rows = _as_bytes_array(msg.data).reshape(int(height * layout.rows), step)[:, :row_bytes]
    if layout.bits == 16:  # the high byte of each value: 16-bit scaled to 8 bits
        rows = rows.reshape(rows.shape[0], -1, 2)[..., 0 if getattr(msg, "is_bigendian", 0) else 1]
    pixels = rows.reshape(rows.shape[0], width, layout.channels) if layout.channels > 1 else rows
    if layout.conversion is None:
        return pixels
    return cv2.cvtColor(np.ascontiguousarray(pixels), layout.conversion)


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

    `encoding` picks the wire layout (WRITE_ENCODINGS); data is assigned as
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
