"""The recognisers the speech node and `hyperseg_transcribe` can run, by parameter name."""
from __future__ import annotations

ENGINES = ("grammar", "whisper")


def make_recognizer(engine: str, whisper_model_path: str = "", language: str = "en"):
    """A recogniser with `recognize(samples_16k) -> Recognition`; ValueError for a bad choice."""
    if engine == "grammar":
        if language != "en":
            raise ValueError(f"engine grammar speaks en only, not {language!r}")
        from hyperseg_ros.speech.recognizer import GrammarRecognizer

        return GrammarRecognizer()
    if engine == "whisper":
        from hyperseg_ros.speech.whisper import WhisperRecognizer

        return WhisperRecognizer(whisper_model_path, language)
    raise ValueError(f"unknown engine {engine!r} (this build has: {', '.join(ENGINES)})")
