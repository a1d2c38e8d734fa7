"""Audio chunks in, transcripts out: decode -> resample -> voice activity -> recogniser -> accept.

ROS-free; the speech node is a shell around it. Every chunk is counted once (`chunks_received` =
used + rejected by reason), and repaired defects (odd length, NaN, clipping) have their own counts.

A recogniser that decodes as audio comes (`begin`, `feed`, `end`: the grammar engine) is fed the
utterance in progress at each chunk, so when the utterance ends only its last frames are left to
decode and `push` returns it already recognised; others (`recognize`) get the whole utterance in
`transcribe`.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import numpy as np

from hyperseg_ros.speech.audio import TARGET_RATE, AudioError, Resampler, decode_chunk, to_pcm16
from hyperseg_ros.speech.grammar import spoken_form
from hyperseg_ros.speech.recognizer import Recognition
from hyperseg_ros.speech.vad import Utterance, VoiceActivity

DEFAULT_MIN_CONFIDENCE = 0.9  # the speech node's min_confidence: all five of the grammar engine's decoders agree
DEFAULT_END_SILENCE_MS = 200  # the silence that ends an utterance (the node's end_silence_ms)


@dataclass(frozen=True)
class Transcribed:
    recognition: Recognition
    accepted: bool
    stamp_ns: int  # stream time of the utterance's first sample
    seconds: float  # utterance length
    decode_ms: float  # recogniser time after the utterance ended (what delays the command)


class SpeechPipeline:
    def __init__(self, recognizer, min_confidence: float = DEFAULT_MIN_CONFIDENCE, max_gap_s: float = 1.0,
                 **vad_args):
        self.recognizer = recognizer
        self.min_confidence = min_confidence
        self.max_gap_ns = int(max_gap_s * 1e9)
        self.vad_args = dict(end_silence_ms=DEFAULT_END_SILENCE_MS) | vad_args
        self.streaming = all(hasattr(recognizer, m) for m in ("begin", "feed", "end"))
        self.counts: Counter = Counter()
        self._format = None
        self._reset_stream(0)

    def _reset_stream(self, stamp_ns: int) -> None:
        self.resampler, self.vad = Resampler(), VoiceActivity(**self.vad_args)
        self._origin_ns, self._samples = stamp_ns, 0  # stream time of sample 0 at 16 kHz
        self._next_ns = None
        self._fed = None  # samples of the utterance in progress given to the recogniser (None: not begun)

    def push(self, data: bytes, sample_rate: int, channels: int, encoding: str, stamp_ns: int) -> list[Utterance]:
        """One chunk; returns the utterances it completed (to hand to `transcribe`)."""
        self.counts["chunks_received"] += 1
        try:
            decoded = decode_chunk(bytes(data), int(sample_rate), int(channels), str(encoding))
        except AudioError as err:
            self.counts[err.reason] += 1
            raise
        for problem in decoded.problems:
            self.counts[problem] += 1
        fmt = (decoded.rate, int(channels), str(encoding).upper())
        out: list[Utterance] = []
        gap = self._next_ns is not None and abs(stamp_ns - self._next_ns) > self.max_gap_ns
        if fmt != self._format or gap:  # a new stream: the last one's utterance ends here
            if self._format is not None:
                out += self._end_stream()
                self.counts["stream_restarts"] += 1
            self._format = fmt
            self._reset_stream(stamp_ns)
        self._next_ns = stamp_ns + int(len(decoded.samples) * 1e9 / decoded.rate)
        self.counts["chunks_used"] += 1
        x = self.resampler(decoded.samples, decoded.rate)
        self._samples += len(x)
        return out + self._stream(self.vad.push(x))

    def _stream(self, done: list[Utterance]) -> list[Utterance]:
        """Feed the recogniser: the rest of each utterance that ended (then its result), and the new
        audio of the one in progress."""
        if not self.streaming:
            return done
        for u in done:
            if self._fed is None:  # began and ended within this chunk
                self.recognizer.begin()
                self._fed = 0
            t0 = time.perf_counter()
            self.recognizer.feed(u.samples[self._fed:])
            u.recognition = self.recognizer.end()
            u.decode_ms = (time.perf_counter() - t0) * 1000.0
            self._fed = None
        if self.vad.in_speech:
            if self._fed is None:
                self.recognizer.begin()
                self._fed = 0
            self.recognizer.feed(self.vad.speech_since(self._fed))
            self._fed = self.vad.samples_in_speech
        return done

    def _end_stream(self) -> list[Utterance]:
        rest = self.resampler.flush()
        return self._stream(self.vad.push(rest) + self.vad.flush())

    def flush(self) -> list[Utterance]:
        """No more audio for now (the microphone stopped): the utterance in progress ends."""
        out = self._end_stream()
        self._format, self._next_ns = None, None
        return out

    def stamp_of(self, u: Utterance) -> int:
        return self._origin_ns + int(u.start_sample * 1e9 / TARGET_RATE)

    def transcribe(self, u: Utterance, stamp_ns: int | None = None) -> Transcribed:
        rec, decode_ms = u.recognition, u.decode_ms
        if rec is None:
            t0 = time.perf_counter()
            rec = self.recognizer.recognize(u.samples)
            decode_ms = (time.perf_counter() - t0) * 1000.0
        rec = Recognition(spoken_form(rec.text), rec.confidence, rec.alternatives)
        accepted = bool(rec.text) and rec.confidence >= self.min_confidence
        self.counts["utterances"] += 1
        self.counts["utterances_accepted" if accepted else "utterances_refused"] += 1
        if u.forced_end:
            self.counts["utterances_cut_at_max_length"] += 1
        return Transcribed(rec, accepted, self.stamp_of(u) if stamp_ns is None else stamp_ns,
                           len(u.samples) / TARGET_RATE, decode_ms)


def wav_chunks(samples: np.ndarray, rate: int, chunk_s: float = 0.1):
    """S16LE bytes chunks of `chunk_s` of a mono float signal at `rate`, as a microphone would send them."""
    step = 2 * max(1, int(rate * chunk_s))  # bytes
    pcm = to_pcm16(samples)
    for i in range(0, len(pcm), step):
        yield pcm[i:i + step]
