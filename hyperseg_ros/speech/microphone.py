"""The default sound device (PortAudio, through `sounddevice`) as 100 ms chunks of 16-bit mono audio.

One place for the speech node (`audio_source: microphone`) and `hyperseg_transcribe --microphone`:
both check for a device first and, where there is none, say so in one line.
"""
from __future__ import annotations

import time
from collections.abc import Callable

RATE = 16000  # what the recogniser reads: no resampling on the way
CHUNK_S = 0.1


class NoMicrophone(RuntimeError):
    """No sound system or no input device; the message is one line for the user."""


def _sounddevice():
    try:
        import sounddevice
    except OSError as err:  # the module loads PortAudio's library when imported
        raise NoMicrophone(f"no sound system (PortAudio): {err}") from None
    return sounddevice


def check(rate: int = RATE) -> None:
    """Raise NoMicrophone unless the default input device records `rate` Hz 16-bit mono."""
    sounddevice = _sounddevice()
    try:
        sounddevice.check_input_settings(samplerate=rate, channels=1, dtype="int16")
    except Exception as err:  # noqa: BLE001 - PortAudio's errors have many types
        raise NoMicrophone(f"no microphone: {err}") from None


def open_stream(on_chunk: Callable[[bytes, int, int], None], rate: int = RATE):
    """A started input stream calling `on_chunk(S16LE bytes, rate, stamp ns of the first sample)`
    from PortAudio's thread for every CHUNK_S of audio; stop it with `.close()`."""
    sounddevice = _sounddevice()
    start_ns, blocksize = time.time_ns(), int(rate * CHUNK_S)
    read = [0]  # samples delivered so far: the stamp of each chunk is the stream's own clock

    def callback(data, frames, _time, _status) -> None:
        on_chunk(bytes(data), rate, start_ns + read[0] * 1_000_000_000 // rate)
        read[0] += frames

    stream = sounddevice.RawInputStream(samplerate=rate, channels=1, dtype="int16", blocksize=blocksize,
                                        callback=callback)
    stream.start()
    return stream
