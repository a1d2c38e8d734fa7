"""Real cameras' encodings reach the model in the right colours: each is made here from a known
frame (a red disc, a blue square on grey) by its own definition, and decoded by image_codec;
depth and float images are refused, saying why."""
import cv2
import numpy as np
import pytest
from sensor_msgs.msg import Image

from hyperseg_ros.image_codec import ImageError, check_image, image_to_rgb

RED, BLUE = (220, 30, 30), (30, 40, 220)


def frame(height: int = 120, width: int = 160) -> np.ndarray:
    """uint8 RGB: grey ramp, a red disc (left) and a blue square (right)."""
    img = np.zeros((height, width, 3), np.uint8)
    img[...] = np.linspace(60, 120, width, dtype=np.uint8)[None, :, None]
    yy, xx = np.mgrid[:height, :width]
    img[(yy - height // 2) ** 2 + (xx - width * 3 // 10) ** 2 < (height * 0.18) ** 2] = RED
    img[18:42, 104:128] = BLUE
    return img


def _bayer(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """The mosaic a sensor with the 2x2 colour filter `pattern` (e.g. "rggb", row by row) records."""
    mosaic = np.empty(rgb.shape[:2], np.uint8)
    for k, colour in enumerate(pattern):
        dy, dx = divmod(k, 2)
        mosaic[dy::2, dx::2] = rgb[dy::2, dx::2, "rgb".index(colour)]
    return mosaic


def _nv21(rgb: np.ndarray) -> np.ndarray:
    """Y plane, then one interleaved V, U row per two image rows (from OpenCV's planar YV12: Y, V, U)."""
    h, w = rgb.shape[:2]
    yv12 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YV12).reshape(-1)
    y, v, u = yv12[:h * w], yv12[h * w:h * w * 5 // 4], yv12[h * w * 5 // 4:]
    return np.concatenate([y, np.stack([v, u], axis=1).reshape(-1)]).reshape(h * 3 // 2, w)


def _sixteen(pixels: np.ndarray, big_endian: bool = False) -> bytes:
    """8-bit values as 16-bit ones (v * 257: full scale), in the given byte order."""
    return (pixels.astype(np.uint16) * 257).astype(">u2" if big_endian else "<u2").tobytes()


def encode(rgb: np.ndarray, encoding: str) -> Image:
    h, w = rgb.shape[:2]
    big_endian = False
    if encoding in ("yuv422", "uyvy"):
        data = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY).tobytes()
    elif encoding in ("yuyv", "yuv422_yuy2"):
        data = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2).tobytes()
    elif encoding.startswith("bayer_"):
        data = _bayer(rgb, encoding[6:10]).tobytes()
    elif encoding == "nv21":
        data = _nv21(rgb).tobytes()
    elif encoding == "8UC3":
        data = rgb[..., ::-1].tobytes()  # OpenCV's own order: BGR
    elif encoding in ("8UC1", "mono16"):
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        data = grey.tobytes() if encoding == "8UC1" else _sixteen(grey)
    elif encoding in ("rgb16", "bgr16"):
        big_endian = encoding == "bgr16"  # one of each byte order
        data = _sixteen(rgb if encoding == "rgb16" else rgb[..., ::-1], big_endian)
    else:
        raise AssertionError(encoding)
    step = len(data) // (h * 3 // 2 if encoding == "nv21" else h)
    return Image(height=h, width=w, encoding=encoding, is_bigendian=big_endian, step=step, data=data)


COLOUR = ["yuv422", "uyvy", "yuyv", "yuv422_yuy2", "bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8",
          "8UC3", "nv21", "rgb16", "bgr16"]
MONO = ["8UC1", "mono16"]


def _mean(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return rgb[mask].reshape(-1, 3).mean(axis=0)


@pytest.mark.parametrize("encoding", COLOUR)
def test_a_colour_encoding_gives_the_red_disc_and_the_blue_square(encoding):
    rgb = frame()
    out = image_to_rgb(encode(rgb, encoding))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    inner = np.zeros(rgb.shape[:2], bool)  # away from the edges: demosaicing and chroma blur them
    inner[52:68, 40:56] = True
    np.testing.assert_allclose(_mean(out, inner), RED, atol=12)
    square = np.zeros_like(inner)
    square[22:38, 108:124] = True
    np.testing.assert_allclose(_mean(out, square), BLUE, atol=12)


@pytest.mark.parametrize("encoding", MONO)
def test_a_mono_encoding_gives_grey_of_the_right_brightness(encoding):
    rgb = frame()
    out = image_to_rgb(encode(rgb, encoding))
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.abs(out[..., 0].astype(int) - grey).max() <= 1


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_depth_and_float_images_are_refused_saying_so(encoding):
    size = 4 if encoding == "32FC1" else 2
    msg = Image(height=4, width=4, encoding=encoding, step=4 * size, data=bytes(16 * size))
    with pytest.raises(ImageError, match="depth or float image") as err:
        check_image(msg)
    assert err.value.reason == "encoding"


def test_packed_yuv_with_an_odd_width_and_a_short_nv21_are_refused():
    with pytest.raises(ImageError, match="even width") as err:
        check_image(Image(height=2, width=3, encoding="yuyv", step=6, data=bytes(12)))
    assert err.value.reason == "size_mismatch"
    with pytest.raises(ImageError, match="expected step 4 x 6 rows"):  # NV21 holds 1.5 rows per image row
        check_image(Image(height=4, width=4, encoding="nv21", step=4, data=bytes(16)))
