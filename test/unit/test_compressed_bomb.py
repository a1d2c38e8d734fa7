"""Compressed frames: the size comes from the header and a huge one is rejected before a pixel is
decoded; corrupt data is an ImageError and nothing is printed by the codecs themselves."""
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage

from hyperseg_ros.image_codec import ImageError, check_compressed, rgb_to_compressed

ROOT = Path(__file__).resolve().parents[2]
SIDE = 8000  # 64 M pixels: over MAX_PIXELS (16.8 M), 192 MB once decoded to RGB


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side: int = SIDE) -> bytes:
    """A valid grey png of side x side zeros: about 60 KB on the wire."""
    packer = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + pixels
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))


def jpeg_bomb(side: int = SIDE) -> bytes:
    """A small jpeg whose frame header (SOF0) claims side x side pixels."""
    data = bytearray(rgb_to_compressed(np.zeros((16, 16, 3), np.uint8), fmt="jpeg").data)
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", side, side)
    return bytes(data)


@pytest.mark.parametrize("fmt,make", [("png", png_bomb), ("jpeg", jpeg_bomb)])
def test_the_header_size_is_checked_on_receipt(fmt, make):
    msg = CompressedImage(format=fmt, data=make())
    assert len(msg.data) < 200_000
    with pytest.raises(ImageError, match=f"{SIDE}x{SIDE}") as err:
        check_compressed(msg)  # the node's O(1) check on receipt: reads the header only
    assert err.value.reason == "too_large"


_MEASURE = """
import sys
from sensor_msgs.msg import CompressedImage
from hyperseg_ros.image_codec import ImageError, compressed_to_rgb

def peak_mb():  # VmHWM: this process's own peak (ru_maxrss would carry the parent's over exec)
    status = open("/proc/self/status").read()
    return int(status.split("VmHWM:")[1].split()[0]) // 1024

msg = CompressedImage(format="png", data=open(sys.argv[1], "rb").read())
before = peak_mb()
try:
    compressed_to_rgb(msg)
    print("decoded", 0)
except ImageError as err:
    print(err.reason, peak_mb() - before)
"""


def _run(code: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_a_decompression_bomb_is_rejected_without_decoding_it(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bomb())
    done = _run(_MEASURE, str(path))
    assert done.returncode == 0, done.stderr
    reason, grown_mb = done.stdout.split()
    assert reason == "too_large" and int(grown_mb) < 50, f"peak RSS grew {grown_mb} MB on a {SIDE}x{SIDE} bomb"


_CORRUPT = """
import numpy as np
from sensor_msgs.msg import CompressedImage
from hyperseg_ros.image_codec import ImageError, compressed_to_rgb, rgb_to_compressed
rgb = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
reasons = []
for fmt in ("png", "jpeg"):
    good = bytes(rgb_to_compressed(rgb, fmt=fmt).data)
    for bad in (good[: len(good) // 2], good[:60], good[:30] + bytes(len(good) - 30),
                good[:200] + bytes(reversed(good[200:]))):
        try:
            compressed_to_rgb(CompressedImage(format=fmt, data=bad))
            reasons.append("decoded")
        except ImageError as err:
            reasons.append(err.reason)
print(" ".join(reasons))
"""


def test_corrupt_frames_raise_and_the_codecs_print_nothing():
    done = _run(_CORRUPT)
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.split()) == {"decode"}, done.stdout
    assert done.stderr == "", f"the codecs printed their own lines:\n{done.stderr}"
