"""Voice activity detection: cuts a 16 kHz stream into utterances at silence.

Energy against an adaptive noise floor, in 10 ms frames. Speech starts after `start_ms` of frames
above the floor; the utterance ends after `end_silence_ms` below it (the latency from the end of
speech to a transcript) or at `max_utterance_s`. Minutes of silence cost one float of state; an
utterance keeps `pre_roll_ms` of audio from before its start so the first consonant is not lost.
The audio of the utterance in progress can be read as it grows (`speech_since`), so a recogniser
can decode it while it is spoken.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

RATE = 16000
FRAME = RATE // 100  # 10 ms


@dataclass
class Utterance:
    samples: np.ndarray  # float32 at 16 kHz, pre-roll and trailing silence included
    start_sample: int  # stream index of samples[0]
    forced_end: bool  # cut at max_utterance_s, not at silence
    speech_end: int = 0  # stream index just after its last loud frame (the end of speech)
    recognition: object = None  # a streaming recogniser's result, set by the pipeline
    decode_ms: float = 0.0  # the recogniser's time after the utterance ended


class VoiceActivity:
    def __init__(self, threshold_db: float = 12.0, min_level_db: float = -50.0, start_ms: int = 60,
                 end_silence_ms: int = 250, pre_roll_ms: int = 200, max_utterance_s: float = 10.0):
        self.threshold_db, self.min_level_db = threshold_db, min_level_db
        self.start_frames, self.end_frames = start_ms // 10, end_silence_ms // 10
        self.pre_roll = deque(maxlen=pre_roll_ms // 10)
        self.max_frames = int(max_utterance_s * 100)
        self.noise_db = min_level_db
        self._pending = np.zeros(0, np.float32)
        self._position = 0  # stream index of the next frame
        self._speech: list[np.ndarray] | None = None
        self._start = 0
        self._loud = 0
        self._quiet = 0
        self._last_loud = 0

    @property
    def in_speech(self) -> bool:
        return self._speech is not None

    def reset(self) -> None:
        self.__init__(self.threshold_db, self.min_level_db, self.start_frames * 10, self.end_frames * 10,
                      self.pre_roll.maxlen * 10, self.max_frames / 100)

    def push(self, x: np.ndarray) -> list[Utterance]:
        """Feed samples; returns the utterances that ended inside them."""
        buf = np.concatenate([self._pending, x.astype(np.float32)])
        n = len(buf) // FRAME
        self._pending = buf[n * FRAME:]
        out = []
        for frame in buf[:n * FRAME].reshape(n, FRAME):
            u = self._frame(frame)
            if u is not None:
                out.append(u)
        return out

    @property
    def samples_in_speech(self) -> int:
        """Samples of the utterance in progress so far (0 when none)."""
        return len(self._speech) * FRAME if self._speech is not None else 0

    def speech_since(self, k: int) -> np.ndarray:
        """The utterance in progress from its k-th sample (a multiple of 10 ms frames) on."""
        if self._speech is None or k >= len(self._speech) * FRAME:
            return np.zeros(0, np.float32)
        return np.concatenate(self._speech[k // FRAME:])

    def flush(self) -> list[Utterance]:
        """End of stream: an utterance in progress ends here."""
        if self._speech is None:
            return []
        return [self._finish(forced=False)]

    def _frame(self, frame: np.ndarray) -> Utterance | None:
        level = 10 * np.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1e-12)
        loud = level > max(self.noise_db + self.threshold_db, self.min_level_db)
        index = self._position
        self._position += FRAME
        if self._speech is None:
            if not loud:  # the floor follows quiet frames quickly, loud ones not at all
                self.noise_db = 0.95 * self.noise_db + 0.05 * max(level, self.min_level_db - 20)
            self.pre_roll.append(frame)
            self._loud = self._loud + 1 if loud else 0
            if self._loud >= self.start_frames:
                self._speech = list(self.pre_roll)
                self._start = index + FRAME - len(self._speech) * FRAME
                self.pre_roll.clear()
                self._quiet = 0
                self._last_loud = index + FRAME
            return None
        self._speech.append(frame)
        self._quiet = 0 if loud else self._quiet + 1
        if loud:
            self._last_loud = index + FRAME
        if self._quiet >= self.end_frames:
            return self._finish(forced=False)
        if len(self._speech) >= self.max_frames:
            return self._finish(forced=True)
        return None

    def _finish(self, forced: bool) -> Utterance:
        u = Utterance(np.concatenate(self._speech), self._start, forced, self._last_loud)
        self._speech, self._loud, self._quiet = None, 0, 0
        return u
