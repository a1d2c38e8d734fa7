"""Audio chunks as they arrive (any rate, channel count, encoding) -> mono float32 at 16 kHz.

Every defect of a chunk has a name (`AudioError.reason`, or a warning in `Decoded.problems`); the
node counts them in /diagnostics. A chunk that cannot be read is rejected whole; one that can be
read with a repair (a trailing partial frame cut off, NaN set to 0, clipping) is used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd

import numpy as np
from scipy.signal import resample_poly

TARGET_RATE = 16000
ENCODINGS = {"S16LE": np.dtype("<i2"), "F32LE": np.dtype("<f4")}
MAX_CHANNELS = 32
MIN_RATE, MAX_RATE = 4000, 384000
CLIP_LEVEL = 0.999  # |sample| at full scale, as a fraction


class AudioError(ValueError):
    """A chunk that cannot be read; `reason` is its /diagnostics key."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Decoded:
    samples: np.ndarray  # float32 mono in [-1, 1] at the chunk's own rate
    rate: int
    problems: list[str] = field(default_factory=list)  # repaired defects, diagnostics keys


def decode_chunk(data: bytes, sample_rate: int, channels: int, encoding: str) -> Decoded:
    """Bytes of one AudioChunk -> mono float samples at its rate. Raises AudioError."""
    if encoding.upper() not in ENCODINGS:
        raise AudioError("rejected_encoding", f"unknown encoding {encoding!r} (S16LE or F32LE)")
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise AudioError("rejected_rate", f"sample_rate {sample_rate} outside {MIN_RATE}-{MAX_RATE} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError("rejected_channels", f"channels {channels} outside 1-{MAX_CHANNELS}")
    dtype = ENCODINGS[encoding.upper()]
    frame = dtype.itemsize * channels
    problems = []
    usable = len(data) - len(data) % frame
    if usable != len(data):
        problems.append("odd_length")  # a partial frame at the end: dropped
    if usable == 0:
        raise AudioError("rejected_empty", f"{len(data)} bytes: less than one frame of {frame} bytes")
    raw = np.frombuffer(data[:usable], dtype=dtype).reshape(-1, channels)
    if dtype.kind == "i":
        x = raw.astype(np.float32) / 32768.0
        clipped = np.abs(raw.astype(np.int32)) >= int(32767 * CLIP_LEVEL)
    else:
        x = raw.astype(np.float32)
        bad = ~np.isfinite(x)
        if bad.any():
            problems.append("non_finite")
            x = np.where(bad, 0.0, x)
        clipped = np.abs(x) >= CLIP_LEVEL
        x = np.clip(x, -1.0, 1.0)
    if clipped.mean() > 0.01:  # a few full-scale peaks are normal; many are distortion
        problems.append("clipped")
    return Decoded(x.mean(axis=1).astype(np.float32), sample_rate, problems)


class Resampler:
    """Streaming resampler to 16 kHz over chunks of any length, with the output of one signal cut
    into chunks equal to that of the whole signal (away from its ends). Input is filtered in blocks
    whose length is a multiple of the rate ratio's denominator (so each starts on an output sample),
    each with the block before it as history and the filter's reach after it as look-ahead: the
    output lags the input by less than a block (20 ms) plus that reach (under 1 ms)."""

    def __init__(self):
        self.rate: int | None = None

    def _setup(self, rate: int) -> None:
        g = gcd(rate, TARGET_RATE)
        self.rate, self.up, self.down = rate, TARGET_RATE // g, rate // g
        self.block = self.down * max(1, -(-rate // 50 // self.down))  # >= 20 ms, whole denominators
        # resample_poly's filter spans 10 * max(up, down) taps each side at the up-sampled rate
        self.reach = -(-10 * max(self.up, self.down) // self.up) + 1
        self._history = np.zeros(0, np.float32)  # the block before the next one out
        self._pending = np.zeros(0, np.float32)  # input not yet out: the next block and its look-ahead

    def __call__(self, x: np.ndarray, rate: int) -> np.ndarray:
        if rate != self.rate:
            self._setup(rate)  # a new rate is a new stream
        if rate == TARGET_RATE:
            return x.astype(np.float32)
        self._pending = np.concatenate([self._pending, x.astype(np.float32)])
        out = []
        while len(self._pending) >= self.block + self.reach:
            current, ahead = self._pending[:self.block], self._pending[self.block:self.block + self.reach]
            out.append(self._filter(current, ahead))
            self._history, self._pending = current, self._pending[self.block:]
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def _filter(self, current: np.ndarray, ahead: np.ndarray) -> np.ndarray:
        """The 16 kHz samples of `current` (all of them when `ahead` covers the filter's reach)."""
        y = resample_poly(np.concatenate([self._history, current, ahead]).astype(np.float64), self.up, self.down)
        lo = len(self._history) * self.up // self.down
        return y[lo:lo + -(-len(current) * self.up // self.down)].astype(np.float32)

    def flush(self) -> np.ndarray:
        """The rest of the stream (end of input): what waited for look-ahead."""
        if self.rate is None or self.rate == TARGET_RATE:
            return np.zeros(0, np.float32)
        rest = self._pending
        y = self._filter(rest, np.zeros(0, np.float32)) if len(rest) else np.zeros(0, np.float32)
        self._setup(self.rate)
        return y


def to_pcm16(x: np.ndarray) -> bytes:
    """float [-1, 1] -> 16-bit little-endian PCM, what the recogniser reads."""
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def resample(x: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """Whole-signal resampling (files, tests)."""
    if rate == target:
        return x.astype(np.float32)
    g = gcd(rate, target)
    return resample_poly(x.astype(np.float64), target // g, rate // g).astype(np.float32)
