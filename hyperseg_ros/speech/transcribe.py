"""`hyperseg_transcribe FILE.wav ...`: one line per file, the text, a tab, the confidence.

The same path as the speech node (chunks -> voice activity -> recogniser), so a file gives what
the node would publish. `--microphone` reads the default sound device (PortAudio) until Ctrl-C,
and fails with one line where there is none.
"""
from __future__ import annotations

import argparse
import queue
import sys
import wave

import numpy as np

from hyperseg_ros.speech.pipeline import SpeechPipeline, wav_chunks


def read_wav(path: str) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV -> (mono float samples, rate)."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * w.getsampwidth()}-bit samples (16-bit PCM expected)")
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
        return x.reshape(-1, w.getnchannels()).mean(axis=1), w.getframerate()


def transcribe_file(pipeline: SpeechPipeline, path: str) -> tuple[str, float]:
    """The utterances of a file joined (most files hold one), and the lowest confidence."""
    x, rate = read_wav(path)
    utterances = []
    for k, chunk in enumerate(wav_chunks(x, rate)):
        utterances += pipeline.push(chunk, rate, 1, "S16LE", int(k * 0.1 * 1e9))
    utterances += pipeline.flush()
    results = [pipeline.transcribe(u).recognition for u in utterances]
    results = [r for r in results if r.text]
    if not results:
        return "", 0.0
    return " ".join(r.text for r in results), min(r.confidence for r in results)


def microphone(pipeline: SpeechPipeline) -> int:
    """Transcribe the default sound device until Ctrl-C: a line per utterance."""
    from hyperseg_ros.speech import microphone as mic

    try:
        mic.check()
    except mic.NoMicrophone as err:
        print(f"hyperseg_transcribe: {err}", file=sys.stderr)
        return 1
    chunks: queue.Queue = queue.Queue()
    stream = mic.open_stream(lambda data, rate, stamp: chunks.put((data, rate, stamp)))
    try:
        while True:
            data, rate, stamp = chunks.get()
            for u in pipeline.push(data, rate, 1, "S16LE", stamp):
                r = pipeline.transcribe(u).recognition
                print(f"{r.text}\t{r.confidence:.3f}", flush=True)
    except KeyboardInterrupt:
        return 0
    finally:
        stream.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="hyperseg_transcribe", description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="16-bit PCM WAV files, any rate and channel count")
    ap.add_argument("--microphone", action="store_true", help="read the default sound device instead")
    ap.add_argument("--engine", default="grammar", help="grammar (embedded, the command language) | whisper")
    ap.add_argument("--whisper-model-path", default="", help="a local Whisper model directory (engine whisper)")
    ap.add_argument("--language", default="en", help="the spoken language (grammar: en only)")
    args = ap.parse_args(argv)
    if not args.files and not args.microphone:
        ap.error("give WAV files or --microphone")
    from hyperseg_ros.speech.engines import make_recognizer

    try:
        recognizer = make_recognizer(args.engine, args.whisper_model_path, args.language)
    except (ValueError, OSError) as err:  # one line, as the speech node's configure says it
        print(f"hyperseg_transcribe: {err}", file=sys.stderr)
        return 2
    pipeline = SpeechPipeline(recognizer)
    if args.microphone:
        return microphone(pipeline)
    code = 0
    for path in args.files:
        try:
            text, confidence = transcribe_file(pipeline, path)
        except (OSError, ValueError, EOFError, wave.Error) as err:
            print(f"hyperseg_transcribe: {path}: {err}", file=sys.stderr)
            code = 1
            continue
        print(f"{text}\t{confidence:.3f}", flush=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
