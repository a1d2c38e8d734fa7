"""The embedded recogniser: pocketsphinx restricted to the command grammar.

One pass over each utterance (16 kHz mono) with the lattice kept (`bestpath`): the best sentence
of the command language, its n-best list (deduplicated: the lattice repeats a sentence once per
segmentation) as alternatives, and its lattice posterior as confidence. The posterior of a whole
sentence shrinks with its length, so the confidence is its geometric mean per word.

Measured on 13 espeak-ng utterances before settling on this (see the README's speech section):
rescoring one-word swaps against a free phone loop chose the wrong word more often than the
grammar pass (4 right against 7), and the phone-loop match did not separate right from wrong;
without the lattice (`bestpath` off) decoding is ~8x faster but loses words the lattice keeps.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperseg_ros.speech import grammar, lexicon
from hyperseg_ros.speech.audio import to_pcm16


@dataclass(frozen=True)
class Recognition:
    text: str  # "" when nothing in the command language was heard
    confidence: float  # [0, 1]
    alternatives: tuple[str, ...] = ()


def model_dir() -> Path:
    """The acoustic model and dictionary bundled with the pocketsphinx wheel."""
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us"


class GrammarRecognizer:
    """pocketsphinx over the command grammar."""

    def __init__(self, n_alternatives: int = 3, nbest_scan: int = 60):
        from pocketsphinx import Decoder

        model = model_dir()
        self.pronunciations = lexicon.lexicon(grammar.grammar_words(), model / "cmudict-en-us.dict")
        self._dir = tempfile.TemporaryDirectory(prefix="hyperseg_speech_")
        folder = Path(self._dir.name)
        lexicon.write_dictionary(self.pronunciations, folder / "command.dict")
        (folder / "command.gram").write_text(grammar.jsgf(), encoding="utf-8")
        # dither: synthetic or gated audio has runs of exact zeros, on which the front end's noise
        # estimate swallows the first words; a fixed seed keeps decoding deterministic.
        self._decoder = Decoder(hmm=str(model / "en-us"), dict=str(folder / "command.dict"),
                                jsgf=str(folder / "command.gram"), samprate=16000, loglevel="FATAL",
                                dither=True, seed=1, bestpath=True)
        self.n_alternatives, self.nbest_scan = n_alternatives, nbest_scan

    def close(self) -> None:
        self._dir.cleanup()

    def recognize(self, samples: np.ndarray) -> Recognition:
        """samples: float32 mono at 16 kHz, one utterance."""
        d = self._decoder
        d.start_utt()
        d.process_raw(to_pcm16(samples), full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        if hyp is None or not hyp.hypstr:
            return Recognition("", 0.0)
        text = hyp.hypstr
        alternatives: list[str] = []
        for i, n in enumerate(d.nbest()):
            if i >= self.nbest_scan or len(alternatives) >= self.n_alternatives:
                break
            if n.hypstr and n.hypstr != text and n.hypstr not in alternatives:
                alternatives.append(n.hypstr)
        posterior = min(max(float(d.get_prob()), 0.0), 1.0)
        confidence = posterior ** (1.0 / len(text.split()))
        return Recognition(text, confidence, tuple(alternatives))
