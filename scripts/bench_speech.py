"""Speech benchmark (JSON): world commands spoken by espeak-ng voices at two speeds, through the
speech pipeline as the node runs it (chunks arriving in real time -> resampling -> voice activity
-> the recogniser decoding as audio comes -> accept or refuse).

    python -P scripts/bench_speech.py --sentences 400 --splits val shifted

Every sentence is spoken by every voice at every speed; each voice and speed is one continuous
stream (one speaker giving the commands one after another, a second of silence between them), and
one recogniser hears all the streams in turn, as a robot's microphone would. Per split:
- grammar_coverage: share of the split's generated sentences (without audio) that the grammar parses;
- exact: share of utterances recognised word for word, with a 95% Wilson interval; wer: word errors
  over reference words;
- accepted: share published on `command` (confidence >= --min-confidence); accepted_wrong: share of
  those whose text is wrong (interval too); refused_right: right sentences held back;
- same_description, accepted_wrong_description: the same with a sentence counted right when it
  asks for the same thing (grammar.description: leading phrase, politeness and first "the" aside;
  "get the red star" for "fetch the red star" selects the same object);
- end_to_command_ms: from the end of speech (the voice activity's last loud frame) to the command,
  with chunks arriving in real time: the wait for the chunk that ends the utterance's trailing
  silence, plus the wall time of processing it (resampling, voice activity, the recogniser's end);
- thresholds: accepted and accepted_wrong at other confidence thresholds (to choose one on val).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hyperseg_ros.speech.engines import make_recognizer  # noqa: E402
from hyperseg_ros.speech.grammar import description, in_language  # noqa: E402
from hyperseg_ros.speech.pipeline import SpeechPipeline  # noqa: E402
from hyperseg_ros.speech.spoken import VOICES, speak, world_sentences  # noqa: E402
from hyperseg_ros.speech.vad import RATE  # noqa: E402


def word_errors(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, x in enumerate(ref, 1):
        cur = [i]
        for j, y in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95% interval of a share k/n."""
    if n == 0:
        return [0.0, 1.0]
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [round((centre - half) / (1 + z * z / n), 4), round((centre + half) / (1 + z * z / n), 4)]


def speak_stream(pipe: SpeechPipeline, sentences, voice: str, wpm: int, chunk_s: float):
    """One speaker says the sentences in turn; yields a result row per sentence."""
    position = 0  # input samples pushed so far (the stream's clock)
    for text in sentences:
        x, rate = speak(text, voice, wpm)
        x = np.concatenate([np.zeros(rate // 2, np.float32), x, np.zeros(rate, np.float32)])
        pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
        n = max(1, int(rate * chunk_s))
        done = []  # (utterance, input time at the end of the chunk that completed it, wall ms of that push)
        for i in range(0, len(pcm), n):
            chunk = pcm[i:i + n]
            t0 = time.perf_counter()
            out = pipe.push(chunk.tobytes(), rate, 1, "S16LE", int(position * 1e9 / rate))
            wall = (time.perf_counter() - t0) * 1000.0
            position += len(chunk)
            done += [(u, position / rate, wall) for u in out]
        results = [(pipe.transcribe(u), t, wall, u) for u, t, wall in done]
        heard = " ".join(r.recognition.text for r, *_ in results if r.recognition.text)
        if results:
            _, t_end, wall, last = results[-1]
            latency = (t_end - last.speech_end / RATE) * 1000.0 + wall
            if not pipe.streaming:  # a whole-utterance recogniser decodes after the push
                latency += sum(r.decode_ms for r, *_ in results)
        else:
            latency = float("nan")
        yield dict(text=text, heard=heard, voice=voice, wpm=wpm, utterances=len(results),
                   confidence=min((r.recognition.confidence for r, *_ in results), default=0.0),
                   accepted=bool(results) and bool(heard) and all(r.accepted for r, *_ in results),
                   latency_ms=latency, decode_end_ms=sum(r.decode_ms for r, *_ in results))


def summarise(rows: list[dict], min_confidence: float) -> dict:
    n = len(rows)
    exact = [r["heard"] == r["text"] for r in rows]
    errors = sum(word_errors(r["text"].split(), r["heard"].split()) for r in rows)
    accepted = [r for r in rows if r["accepted"]]
    wrong = sum(r["heard"] != r["text"] for r in accepted)
    same = [description(r["heard"]) == description(r["text"]) for r in rows]
    wrong_description = sum(not s for s, r in zip(same, rows) if r["accepted"])
    lat = np.array([r["latency_ms"] for r in rows if np.isfinite(r["latency_ms"])])
    thresholds = {}
    for t in sorted({r["confidence"] for r in rows if r["heard"]}):  # each confidence that occurs
        acc = [r for r in rows if r["heard"] and r["confidence"] >= t]
        thresholds[f"{t:.3f}"] = dict(accepted=round(len(acc) / n, 4),
                                  accepted_wrong=round(sum(r["heard"] != r["text"] for r in acc) / max(1, len(acc)), 4),
                                  accepted_wrong_description=round(
                                      sum(description(r["heard"]) != description(r["text"]) for r in acc) / max(1, len(acc)), 4))

    def share(key, value):
        sub = [e for e, r in zip(exact, rows) if r[key] == value]
        return round(float(np.mean(sub)), 4)

    return dict(n=n, exact=round(sum(exact) / n, 4), exact_interval=wilson(sum(exact), n),
                wer=round(errors / sum(len(r["text"].split()) for r in rows), 4),
                accepted=round(len(accepted) / n, 4), accepted_wrong=round(wrong / max(1, len(accepted)), 4),
                accepted_wrong_interval=wilson(wrong, len(accepted)), min_confidence=min_confidence,
                same_description=round(sum(same) / n, 4),
                accepted_wrong_description=round(wrong_description / max(1, len(accepted)), 4),
                accepted_wrong_description_interval=wilson(wrong_description, len(accepted)),
                refused_right=round(sum(e and not r["accepted"] for e, r in zip(exact, rows)) / n, 4),
                end_to_command_ms_p50=round(float(np.median(lat)), 1),
                end_to_command_ms_p90=round(float(np.percentile(lat, 90)), 1),
                decode_end_ms_p50=round(float(np.median([r["decode_end_ms"] for r in rows])), 2),
                split_utterances=sum(r["utterances"] != 1 for r in rows),
                exact_by_voice={v: share("voice", v) for v in dict.fromkeys(r["voice"] for r in rows)},
                exact_by_speed={str(s): share("wpm", s) for s in dict.fromkeys(r["wpm"] for r in rows)},
                thresholds=thresholds)


def run(split: str, n: int, voices, speeds, args) -> dict:
    sentences = world_sentences(split, n)
    coverage = world_sentences(split, args.coverage)
    recognizer = make_recognizer(args.engine, args.whisper_model_path)
    pipe = SpeechPipeline(recognizer, args.min_confidence, end_silence_ms=args.end_silence_ms)
    rows, t0 = [], time.perf_counter()
    for voice in voices:
        for wpm in speeds:
            rows += list(speak_stream(pipe, sentences, voice, wpm, args.chunk_ms / 1000.0))
            pipe.flush()
    report = dict(split=split, sentences=len(sentences), voices=list(voices), speeds=list(speeds),
                  chunk_ms=args.chunk_ms, end_silence_ms=args.end_silence_ms,
                  grammar_coverage=round(float(np.mean([in_language(s) for s in coverage])), 4),
                  grammar_coverage_n=len(coverage))
    report |= summarise(rows, args.min_confidence)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    return report | dict(rows=rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=400, help="per split; each is spoken by every voice at every speed")
    ap.add_argument("--splits", nargs="+", default=["val", "shifted"])
    ap.add_argument("--voices", nargs="+", default=list(VOICES))
    ap.add_argument("--speeds", nargs="+", type=int, default=[150, 175])
    ap.add_argument("--min-confidence", type=float, default=None, help="default: the speech node's")
    ap.add_argument("--end-silence-ms", type=int, default=None, help="default: the speech node's")
    ap.add_argument("--chunk-ms", type=float, default=100.0, help="length of the audio chunks, as a microphone sends them")
    ap.add_argument("--coverage", type=int, default=2000, help="generated sentences for the grammar coverage check")
    ap.add_argument("--rows", help="write every sentence's result to this JSON file")
    ap.add_argument("--engine", default="grammar", help="grammar | whisper")
    ap.add_argument("--whisper-model-path", default="", help="a local Whisper model directory (engine whisper)")
    args = ap.parse_args()
    from hyperseg_ros.speech.pipeline import DEFAULT_END_SILENCE_MS, DEFAULT_MIN_CONFIDENCE

    args.min_confidence = DEFAULT_MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
    args.end_silence_ms = DEFAULT_END_SILENCE_MS if args.end_silence_ms is None else args.end_silence_ms
    reports = [run(s, args.sentences, args.voices, args.speeds, args) for s in args.splits]
    if args.rows:
        Path(args.rows).write_text(json.dumps(reports, indent=1))
    print(json.dumps([{k: v for k, v in r.items() if k != "rows"} for r in reports], indent=1))


if __name__ == "__main__":
    main()
