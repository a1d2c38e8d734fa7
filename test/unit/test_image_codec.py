"""image_codec: every supported encoding, row padding, compressed input and the rejections."""
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from hyperseg_ros.image_codec import (
    WRITE_ENCODINGS,
    ImageError,
    compressed_to_rgb,
    image_to_rgb,
    rgb_to_compressed,
    rgb_to_image,
)


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding", [e for e in WRITE_ENCODINGS if e != "mono8"])
def test_colour_encodings_round_trip_exactly(rgb, encoding):
    msg = rgb_to_image(rgb, encoding=encoding)
    assert (msg.height, msg.width, msg.encoding) == (48, 64, encoding)
    np.testing.assert_array_equal(image_to_rgb(msg), rgb)


def test_mono8_is_grey_in_all_three_channels(rgb):
    out = image_to_rgb(rgb_to_image(rgb, encoding="mono8"))
    assert out.shape == (48, 64, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_rgb8_decoding_is_zero_copy(rgb):
    msg = rgb_to_image(rgb)
    assert np.shares_memory(image_to_rgb(msg), np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("encoding,channels", [("rgb8", 3), ("bgra8", 4), ("mono8", 1)])
def test_row_padding_from_step_is_skipped(rgb, encoding, channels):
    dense = rgb_to_image(rgb, encoding=encoding)
    rows = np.frombuffer(dense.data, np.uint8).reshape(48, 64 * channels)
    padded = np.concatenate([rows, np.full((48, 7), 255, np.uint8)], axis=1)
    msg = Image(height=48, width=64, encoding=encoding, step=64 * channels + 7, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_rgb(msg), image_to_rgb(dense))


def test_duck_typed_message_with_bytes_data(rgb):
    class Msg:  # e.g. a rosbags message: same fields, data as a numpy array
        encoding, height, width, step, data = "rgb8", 48, 64, 192, rgb.reshape(-1)

    np.testing.assert_array_equal(image_to_rgb(Msg()), rgb)


@pytest.mark.parametrize(
    "fields,reason",
    [
        (dict(encoding="16UC1", step=128, data=bytes(48 * 128)), "encoding"),
        (dict(encoding="rgb8", step=64 * 3, data=bytes(10)), "size_mismatch"),
        (dict(encoding="rgb8", step=100, data=bytes(48 * 100)), "size_mismatch"),
        (dict(encoding="rgb8", height=0, step=192, data=b""), "empty"),
    ],
)
def test_malformed_images_are_rejected_with_a_reason(fields, reason):
    msg = Image(**{"height": 48, "width": 64, **fields})
    with pytest.raises(ImageError) as err:
        image_to_rgb(msg)
    assert err.value.reason == reason


def test_huge_images_are_rejected(rgb):
    with pytest.raises(ImageError) as err:
        image_to_rgb(rgb_to_image(rgb), max_pixels=48 * 64 - 1)
    assert err.value.reason == "too_large"


def test_png_round_trips_exactly_and_jpeg_closely(rgb):
    np.testing.assert_array_equal(compressed_to_rgb(rgb_to_compressed(rgb, fmt="png")), rgb)
    smooth = np.zeros((48, 64, 3), np.uint8)
    smooth[:, :32] = (200, 30, 60)
    out = compressed_to_rgb(rgb_to_compressed(smooth, fmt="jpeg", quality=95))
    assert out.shape == smooth.shape
    assert np.abs(out.astype(int) - smooth).mean() < 4


@pytest.mark.parametrize(
    "data,reason",
    [(b"", "empty"), (b"GIF89a" + bytes(20), "encoding"), (b"\xff\xd8\xff" + bytes(20), "decode")],
)
def test_bad_compressed_images_are_rejected(data, reason):
    with pytest.raises(ImageError) as err:
        compressed_to_rgb(CompressedImage(format="jpeg", data=data))
    assert err.value.reason == reason
