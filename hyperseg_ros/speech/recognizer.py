"""The embedded recogniser: pocketsphinx restricted to the command grammar, decoding as audio comes.

An utterance is decoded while it is spoken (`begin`, `feed` for each piece, `end`), so at its end
only the last frames remain: `end` takes milliseconds where decoding the whole utterance at once
took ~100 ms (and, with the lattice kept for n-best lists, over a second). `recognize` runs the
same steps on a whole signal (files, tests).

Choices, each measured with scripts/bench_speech.py on espeak-ng voices (docs/REFERENCE.md, "Speech
commands", has the numbers):
- a noise floor: seeded pink noise at `floor` x the utterance's level so far is added before the
  features. Synthetic or gated audio has stretches of near-digital silence, which the acoustic
  model (trained on recordings, which always have a floor) reads badly: its silence model then
  swallows whole words ("select the black triangle" -> "the triangle"). A real microphone's own
  floor is usually above it, so there it changes little. White noise masked the weak fricatives
  ("fetch" -> "get") more than pink noise does.
- live cepstral mean normalisation carried from utterance to utterance (the decoder's own): it
  adapts to the speaker and microphone. A fixed prior for each utterance did much worse, and a mean
  over the whole utterance (batch) somewhat worse.
- no lattice: `bestpath` off. The lattice's n-best lists repeated the best sentence once per
  segmentation (no alternatives in the first 20), cost seconds, and its posterior was 1.0.
- language weight 1 (default 6.5): the grammar's choices weigh as their probabilities; at 6.5 the
  decoder dropped optional words (a leading phrase costs log(1/36) x 6.5).
- five decoders over frequency warps 1.0, 0.9, 1.1, 0.8 and 1.2 (vocal tract length: a female
  voice is heard better warped): the sentence most of them hear wins, ties going to the earlier
  warp (the unwarped one first), and the share that hear it is the confidence; the others'
  sentences are the alternatives. The per-frame acoustic score of the worst word did not separate
  right from wrong; agreement does. The outer warps 0.8 and 1.2 hear worse alone (83-90% exact)
  but err elsewhere than the inner three: requiring all five to agree halved the accepted-but-wrong
  share of three (60 val sentences x 8: 5.6% -> 2.1% at 90% -> 80% accepted; 100 shifted: 4.5% ->
  1.6%), and the vote of five is as often exact as that of three.
- two pronunciation variants (`lexicon.VARIANTS`): what all five warps still heard alike was mostly
  "fetch" as "get" and "select" as "segment"; with them, 400 sentences x 8 gave 1.5% (val) and 1.1%
  (shifted) accepted-but-wrong instead of 1.9% and 2.4%.
"""
from __future__ import annotations

import math
import tempfile
from collections import Counter
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


def pink_filter(rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """An IIR filter whose gain falls ~3 dB an octave (pink noise from white) over the speech band:
    four real poles a factor 6 apart from 40 Hz, a zero between each two."""
    poles = 40.0 * 6.0 ** np.arange(4)
    zeros = poles * math.sqrt(6.0)
    b = np.poly(np.exp(-2 * np.pi * zeros / rate))
    a = np.poly(np.exp(-2 * np.pi * poles / rate))
    return b, a


class NoiseFloor:
    """Adds pink noise at `level` x the running peak of the signal's 50 ms level, in 10 ms frames,
    seeded per utterance (the same audio gives the same features). Streaming: pieces of any length
    give the same output as the whole signal."""

    def __init__(self, level: float, seed: int = 1):
        self.level, self.seed = level, seed
        self._b, self._a = pink_filter()
        impulse = lfilter(self._b, self._a, np.eye(1, 1 << 14)[0])
        self._gain = 1.0 / math.sqrt(float(np.sum(impulse ** 2)))  # white noise of unit variance in, out
        self.reset()

    def reset(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._zi = np.zeros(len(self._a) - 1)
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
        noise, self._zi = lfilter(self._b, self._a, self._rng.standard_normal(n), zi=self._zi)
        noise *= self._gain  # unit variance
        for i in range(0, n, FRAME):
            frame = x[i:i + FRAME].astype(np.float64)
            self._recent = np.roll(self._recent, -1)
            self._recent[-1] = float(np.mean(frame ** 2))
            self._peak = max(self._peak, math.sqrt(float(self._recent.mean())))
            out[i:i + FRAME] = frame + noise[i:i + len(frame)] * (self.level * self._peak)
        return out


class GrammarRecognizer:
    """pocketsphinx over the command grammar, one utterance at a time, by one decoder per
    frequency warp; the sentence most of them hear wins, and the share that hear it is the
    confidence."""

    def __init__(self, floor: float = 0.04, warps: tuple[float, ...] = (1.0, 0.9, 1.1, 0.8, 1.2), block: int = 320,
                 **decoder_args):
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
        self._decoders = [Decoder(**args, **({} if w == 1.0 else dict(warp_type="inverse_linear", warp_params=str(w))))
                          for w in warps]
        self.warps = tuple(warps)
        self._floor = NoiseFloor(floor)
        self.block = block  # samples per decoder call: fixed, so results do not depend on chunking
        self._buffer = np.zeros(0, np.float32)
        self._open = False

    def close(self) -> None:
        self._dir.cleanup()

    def begin(self) -> None:
        """A new utterance starts (an unfinished one is dropped)."""
        for d in self._decoders:
            if self._open:
                d.end_utt()
            d.start_utt()
        self._floor.reset()
        self._buffer = np.zeros(0, np.float32)
        self._open = True

    def _process(self, x: np.ndarray) -> None:
        pcm = to_pcm16(x)
        for d in self._decoders:
            d.process_raw(pcm, full_utt=False)

    def feed(self, samples: np.ndarray) -> None:
        """The utterance's next samples (float32 mono at 16 kHz, any length)."""
        if not self._open:
            self.begin()
        self._buffer = np.concatenate([self._buffer, self._floor(samples)])
        n = len(self._buffer) - len(self._buffer) % self.block
        for i in range(0, n, self.block):  # one call per block: the decoder's running mean moves per call
            self._process(self._buffer[i:i + self.block])
        self._buffer = self._buffer[n:]

    def end(self) -> Recognition:
        """The utterance is over: the sentence of the command language most decoders heard."""
        if not self._open:
            return Recognition("", 0.0)
        rest = np.concatenate([self._buffer, self._floor(np.zeros(0, np.float32), last=True)])
        if len(rest):
            self._process(rest)
        heard = []
        for d in self._decoders:
            d.end_utt()
            hyp = d.hyp()
            heard.append(hyp.hypstr if hyp is not None else "")
        self._open = False
        votes = Counter(heard)
        # most votes first; a tie goes to the sentence of the earlier decoder (the unwarped one first)
        ranked = sorted(votes, key=lambda t: (-votes[t], heard.index(t)))
        text = ranked[0]
        if not text:
            return Recognition("", 0.0, tuple(t for t in ranked[1:] if t))
        return Recognition(text, votes[text] / len(heard), tuple(t for t in ranked[1:] if t))

    def recognize(self, samples: np.ndarray) -> Recognition:
        """samples: float32 mono at 16 kHz, one whole utterance."""
        self.begin()
        self.feed(samples)
        return self.end()
