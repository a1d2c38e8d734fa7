"""Speech benchmark (JSON): world commands spoken by espeak-ng voices at two speeds, through the
speech pipeline (100 ms chunks -> voice activity -> recogniser), as the node runs it.

    python -P scripts/bench_speech.py --sentences 400 --splits val shifted
    python -P scripts/bench_speech.py --engine whisper --whisper-model-path ~/models/whisper-base.en

exact: share of sentences recognised word for word; wer: word error rate; accepted_wrong: share
of accepted utterances whose text is wrong; end_to_command_ms: end of speech -> command, i.e. the
voice-activity end silence plus the recogniser's time (median, p90).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hyperseg_ros.speech.engines import make_recognizer  # noqa: E402
from hyperseg_ros.speech.pipeline import SpeechPipeline, wav_chunks  # noqa: E402
from hyperseg_ros.speech.spoken import VOICES, speak, world_sentences  # noqa: E402


def word_errors(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, x in enumerate(ref, 1):
        cur = [i]
        for j, y in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def run(split: str, n: int, voices, speeds, min_confidence: float, end_silence_ms: int, recognizer) -> dict:
    pipe = SpeechPipeline(recognizer, min_confidence, end_silence_ms=end_silence_ms)
    rows = []
    for k, text in enumerate(world_sentences(split, n)):
        voice, wpm = voices[k % len(voices)], speeds[(k // len(voices)) % len(speeds)]
        x, rate = speak(text, voice, wpm)
        x = np.concatenate([np.zeros(rate // 2, np.float32), x, np.zeros(rate, np.float32)])
        utts = []
        for i, chunk in enumerate(wav_chunks(x, rate)):
            utts += pipe.push(chunk, rate, 1, "S16LE", int(i * 1e8))
        utts += pipe.flush()
        results = [pipe.transcribe(u) for u in utts]
        said = " ".join(r.recognition.text for r in results if r.recognition.text)
        conf = min((r.recognition.confidence for r in results), default=0.0)
        rows.append(dict(text=text, heard=said, voice=voice, wpm=wpm, confidence=conf, utterances=len(utts),
                         accepted=bool(results) and all(r.accepted for r in results),
                         decode_ms=sum(r.decode_ms for r in results)))
    exact = [r["heard"] == r["text"] for r in rows]
    errors = sum(word_errors(r["text"].split(), r["heard"].split()) for r in rows)
    accepted = [r for r in rows if r["accepted"]]
    lat = np.array([end_silence_ms + r["decode_ms"] for r in rows])
    by_voice = {v: float(np.mean([e for e, r in zip(exact, rows) if r["voice"] == v])) for v in voices}
    return dict(split=split, n=len(rows), exact=float(np.mean(exact)), wer=errors / sum(len(r["text"].split()) for r in rows),
                accepted=len(accepted) / len(rows),
                accepted_wrong=float(np.mean([r["heard"] != r["text"] for r in accepted])) if accepted else 0.0,
                end_to_command_ms_p50=float(np.median(lat)), end_to_command_ms_p90=float(np.percentile(lat, 90)),
                exact_by_voice=by_voice, rows=rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=400)
    ap.add_argument("--splits", nargs="+", default=["val", "shifted"])
    ap.add_argument("--voices", nargs="+", default=list(VOICES))
    ap.add_argument("--speeds", nargs="+", type=int, default=[150, 175])
    ap.add_argument("--min-confidence", type=float, default=0.3)
    ap.add_argument("--end-silence-ms", type=int, default=250)
    ap.add_argument("--rows", help="write every sentence's result to this JSON file")
    ap.add_argument("--engine", default="grammar", help="grammar | whisper")
    ap.add_argument("--whisper-model-path", default="", help="a local Whisper model directory (engine whisper)")
    args = ap.parse_args()
    recognizer = make_recognizer(args.engine, args.whisper_model_path)
    reports = [run(s, args.sentences, args.voices, args.speeds, args.min_confidence, args.end_silence_ms, recognizer)
               for s in args.splits]
    if args.rows:
        Path(args.rows).write_text(json.dumps(reports, indent=1))
    print(json.dumps([{k: v for k, v in r.items() if k != "rows"} for r in reports], indent=1))


if __name__ == "__main__":
    main()
