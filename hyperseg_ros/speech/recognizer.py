"""The embedded recogniser: pocketsphinx restricted to the command grammar, decoding as audio comes.

An utterance is decoded while it is spoken (`begin`, `feed` for each piece, `end`), so at its end
only the last frames remain: `end` takes milliseconds where decoding the whole utterance at once
took ~100 ms (and, with the lattice kept for n-best lists, over a second). `recognize` runs the
same steps on a whole signal (files, tests).

Front end (measured with scripts/bench_speech.py on espeak-ng voices, docs/REFERENCE.md):
- a noise floor: a low, seeded, low-pass noise at `floor` x the utterance's level so far is added
  before the features. Synthetic or gated audio has stretches of near-digital silence, which the
  acoustic model (trained on recordings, which always have a floor) reads badly: its silence model
  then swallows whole words ("select the black triangle" -> "the triangle"). Exact sentences rose
  from ~60% to ~90%; a real microphone's own floor is usually above it, so there it changes little.
- live cepstral mean normalisation carried from utterance to utterance (the decoder's own): it
  adapts to the speaker and microphone. A fixed prior for each utterance was 16 points worse, and
  a mean over the whole utterance (batch) 4 points worse.
- no lattice: `bestpath` off. The lattice's n-best lists repeated the best sentence once per
  segmentation (no alternatives in the first 20) and cost seconds; its posterior was 1.0.

Confidence: the per-frame acoustic score of the sentence relative to the best score each frame
could have had, of its worst-fitting word. Measured, it separates right from wrong only weakly
(the remaining errors are words the model hears confidently wrong, "fetch" as "get").
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from hyperseg_ros.speech import grammar, lexicon
from hyperseg_ros.speech.audio import to_pcm16

FRAME = 160  # 10 ms at 16 kHz


@dataclass(frozen=True)
class Recognition:
    text: str  # "" when nothing in the command language was heard
    confidence: float  # [0, 1]
    alternatives: tuple[str, ...] = ()


def model_dir() -> Path:
    """The acoustic model and dictionary bundled with the pocketsphinx wheel."""
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us"


class NoiseFloor:
    """Adds low-pass noise at `level` x the running peak of the signal's 50 ms level, in 10 ms
    frames, seeded per utterance (the same audio gives the same features). Streaming: pieces of
    any length give the same output as the whole signal."""

    def __init__(self, level: float, pole: float, seed: int = 1):
        self.level, self.pole, self.seed = level, pole, seed
        self.reset()

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._zi = np.zeros(1)
        self._recent = np.zeros(5)  # the last five frames' mean squares (50 ms)
        self._peak = 0.0
        self._pending = np.zeros(0, np.float32)

    def __call__(self, x: np.ndarray, last: bool = False) -> np.ndarray:
        x = np.concatenate([self._pending, x.astype(np.float32)])
        n = len(x) if last else len(x) - len(x) % FRAME
        x, self._pending = x[:n], x[n:]
        if n == 0 or self.level <= 0:
            return x
        out = np.empty(n, np.float32)
        noise, self._zi = lfilter([1.0 - self.pole], [1.0, -self.pole], self._rng.standard_normal(n), zi=self._zi)
        noise *= math.sqrt((1 + self.pole) / (1 - self.pole))  # unit variance
        for i in range(0, n, FRAME):
            frame = x[i:i + FRAME].astype(np.float64)
            self._recent = np.roll(self._recent, -1)
            self._recent[-1] = float(np.mean(frame ** 2))
            self._peak = max(self._peak, math.sqrt(float(self._recent.mean())))
            out[i:i + FRAME] = frame + noise[i:i + len(frame)] * (self.level * self._peak)
        return out


class GrammarRecognizer:
    """pocketsphinx over the command grammar, one utterance at a time."""

    def __init__(self, floor: float = 0.04, floor_pole: float = 0.9, block: int = 320, **decoder_args):
        from pocketsphinx import Decoder

        model = model_dir()
        self.pronunciations = lexicon.lexicon(grammar.grammar_words(), model / "cmudict-en-us.dict")
        self._dir = tempfile.TemporaryDirectory(prefix="hyperseg_speech_")
        folder = Path(self._dir.name)
        lexicon.write_dictionary(self.pronunciations, folder / "command.dict")
        (folder / "command.gram").write_text(grammar.jsgf(), encoding="utf-8")
        # dither: gated audio has runs of exact zeros; a fixed seed keeps decoding deterministic.
        # lw 1: the grammar's choices weigh as their probabilities (6.5, the default, favoured
        # dropping optional words: a leading phrase costs log(1/36) x 6.5).
        args = dict(hmm=str(model / "en-us"), dict=str(folder / "command.dict"), jsgf=str(folder / "command.gram"),
                    samprate=16000, loglevel="FATAL", dither=True, seed=1, bestpath=False, lw=1.0) | decoder_args
        self._decoder = Decoder(**args)
        self._floor = NoiseFloor(floor, floor_pole)
        self.block = block  # samples per decoder call: fixed, so results do not depend on chunking
        self._buffer = np.zeros(0, np.float32)
        self._open = False

    def close(self) -> None:
        self._dir.cleanup()

    def begin(self) -> None:
        """A new utterance starts (an unfinished one is dropped)."""
        if self._open:
            self._decoder.end_utt()
        self._floor.reset()
        self._buffer = np.zeros(0, np.float32)
        self._decoder.start_utt()
        self._open = True

    def feed(self, samples: np.ndarray) -> None:
        """The utterance's next samples (float32 mono at 16 kHz, any length)."""
        if not self._open:
            self.begin()
        self._buffer = np.concatenate([self._buffer, self._floor(samples)])
        n = len(self._buffer) - len(self._buffer) % self.block
        if n:
            self._decoder.process_raw(to_pcm16(self._buffer[:n]), full_utt=False)
            self._buffer = self._buffer[n:]

    def end(self) -> Recognition:
        """The utterance is over: its best sentence of the command language."""
        if not self._open:
            return Recognition("", 0.0)
        d = self._decoder
        rest = np.concatenate([self._buffer, self._floor(np.zeros(0, np.float32), last=True)])
        if len(rest):
            d.process_raw(to_pcm16(rest), full_utt=False)
        d.end_utt()
        self._open = False
        hyp = d.hyp()
        if hyp is None or not hyp.hypstr:
            return Recognition("", 0.0)
        return Recognition(hyp.hypstr, self._confidence(d.seg() or []))

    @staticmethod
    def _confidence(segments) -> float:
        """exp(-k x the worst word's per-frame acoustic deficit) (0: no fit, 1: each frame's best)."""
        worst = 0.0
        for s in segments:
            if s.word.startswith(("<", "[", "(NULL")) or s.end_frame < s.start_frame:
                continue
            deficit = -math.log(max(s.ascore, 1e-300)) / (s.end_frame - s.start_frame + 1)
            worst = max(worst, deficit)
        return float(math.exp(-100.0 * worst))

    def recognize(self, samples: np.ndarray) -> Recognition:
        """samples: float32 mono at 16 kHz, one whole utterance."""
        self.begin()
        self.feed(samples)
        return self.end()
