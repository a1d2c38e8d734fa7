"""Engine whisper on a tiny random-weight Whisper saved as a real checkpoint is (test/tiny_whisper.py).

Random weights say random words: the tests hold the interface, the offline load, the refusals, and
the confidence against a teacher-forced pass of the model, never the text itself.
"""
import os
import re
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from hyperseg_ros.speech.engines import ENGINES, make_recognizer
from hyperseg_ros.speech.recognizer import Recognition
from hyperseg_ros.speech.whisper import WhisperRecognizer, normalise

ROOT = Path(__file__).resolve().parents[2]


def one_second(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(16000)).astype(np.float32)


@pytest.fixture(scope="module")
def recognizer(whisper_model_dir):
    return make_recognizer("whisper", str(whisper_model_dir))


def test_make_recognizer_gives_the_whisper_recogniser(recognizer):
    assert "whisper" in ENGINES and isinstance(recognizer, WhisperRecognizer)


def test_one_second_of_audio_gives_a_recognition_in_the_grammar_engines_form(recognizer):
    rec = recognizer.recognize(one_second())
    assert isinstance(rec, Recognition)
    # the tiny model's generation config suppresses all but letters and spaces: its text is words
    assert rec.text and re.fullmatch(r"[a-z]+( [a-z]+)*", rec.text), rec.text
    assert 0.0 < rec.confidence <= 1.0
    assert all(isinstance(a, str) and a and a != rec.text for a in rec.alternatives)
    assert len(set(rec.alternatives)) == len(rec.alternatives) <= recognizer.n_alternatives


def test_the_beams_are_distinct_and_best_first(recognizer):
    beams = recognizer.hypotheses(one_second())
    assert len(beams) == recognizer.num_beams
    assert len({h.tokens for h in beams}) == len(beams)
    assert [h.log_prob for h in beams] == sorted((h.log_prob for h in beams), reverse=True)
    assert all(len(h.tokens) <= recognizer.max_length - len(recognizer.prompt) for h in beams)


def test_confidence_is_the_mean_token_probability_of_a_teacher_forced_pass(recognizer):
    """The best beam's tokens forced through the model, with the generation config's suppressions,
    give the log-probability the recogniser reports; decoding again gives the same beams."""
    import torch

    x = one_second(1)
    best = recognizer.hypotheses(x)[0]
    model, gc = recognizer.model, recognizer.model.generation_config
    features = recognizer.features(x, sampling_rate=16000, return_tensors="pt").input_features
    forced = torch.tensor([recognizer.prompt + list(best.tokens[:-1])])
    with torch.no_grad():
        logits = model(input_features=features, decoder_input_ids=forced).logits[0, len(recognizer.prompt) - 1:]
    logits[:, gc.suppress_tokens] = -float("inf")
    logits[0, gc.begin_suppress_tokens] = -float("inf")
    chosen = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(best.tokens)[:, None])
    assert best.log_prob == pytest.approx(chosen.mean().item(), abs=1e-4)
    rec = recognizer.recognize(x)
    assert rec.confidence == pytest.approx(np.exp(best.log_prob), rel=1e-6)
    assert rec.text == normalise(best.text) and recognizer.hypotheses(x) == recognizer.hypotheses(x)


def test_a_second_load_decodes_the_same(recognizer, whisper_model_dir):
    again = WhisperRecognizer(str(whisper_model_dir))
    assert again.recognize(one_second(2)) == recognizer.recognize(one_second(2))


def test_language_picks_the_prompt_and_an_unknown_one_is_refused(recognizer, whisper_model_dir):
    gc = recognizer.model.generation_config
    assert recognizer.prompt == [gc.decoder_start_token_id, gc.lang_to_id["<|en|>"], gc.task_to_id["transcribe"],
                                 gc.no_timestamps_token_id]
    assert make_recognizer("whisper", str(whisper_model_dir), "de").prompt[1] == gc.lang_to_id["<|de|>"]
    with pytest.raises(ValueError, match="no language 'fr'"):
        make_recognizer("whisper", str(whisper_model_dir), "fr")


def test_a_generation_config_without_token_maps_takes_them_from_the_tokenizer(recognizer, whisper_model_dir, tmp_path):
    """As fine-tuned checkpoints are often saved: no lang_to_id, task_to_id, no_timestamps_token_id."""
    import json

    bare = tmp_path / "bare"
    shutil.copytree(whisper_model_dir, bare)
    config = json.loads((bare / "generation_config.json").read_text())
    for key in ("lang_to_id", "task_to_id", "no_timestamps_token_id"):
        del config[key]
    (bare / "generation_config.json").write_text(json.dumps(config))
    assert make_recognizer("whisper", str(bare)).prompt == recognizer.prompt
    with pytest.raises(ValueError, match="no language 'fr'"):
        make_recognizer("whisper", str(bare), "fr")


@pytest.mark.parametrize("path", ["", "  "])
def test_an_empty_path_is_refused_naming_the_parameter(path):
    with pytest.raises(ValueError, match="whisper_model_path") as err:
        make_recognizer("whisper", path)
    assert "\n" not in str(err.value)


def test_weights_other_than_safetensors_are_refused_naming_model_safetensors(whisper_model_dir, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(whisper_model_dir, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"no model\.safetensors .*pytorch_model\.bin"):
        make_recognizer("whisper", str(pickled))
    with pytest.raises(ValueError, match="is not a directory"):
        make_recognizer("whisper", str(tmp_path / "absent"))


def test_a_checkpoint_lacking_a_weight_is_refused(whisper_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    partial = tmp_path / "partial"
    shutil.copytree(whisper_model_dir, partial)
    weights = load_file(partial / "model.safetensors")
    dropped = next(k for k in weights if "encoder.layers.0.fc1.weight" in k)
    del weights[dropped]
    save_file(weights, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="lacks .*fc1.weight"):
        make_recognizer("whisper", str(partial))


def test_normalise_gives_the_spoken_form():
    assert normalise("Um, pick up the RED circle, please!") == "pick up the red circle please"
    assert normalise(" Don't grab the blue one.") == "dont grab the blue one"
    assert normalise("...") == ""


def _write_wav(path: Path, x: np.ndarray, rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def test_hyperseg_transcribe_runs_whisper_offline_one_line_per_file(whisper_model_dir, tmp_path):
    """The CLI in its own process with no hub cache, downloads forbidden and any proxy dead."""
    silence = np.zeros(8000, np.float32)
    files = []
    for k in range(2):
        files.append(tmp_path / f"utterance{k}.wav")
        _write_wav(files[-1], np.concatenate([silence, one_second(k), silence]))
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_HOME=str(tmp_path / "hf_home"), HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9",
               OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-P", "-m", "hyperseg_ros.speech.transcribe", "--engine", "whisper",
                           "--whisper-model-path", str(whisper_model_dir), *map(str, files)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout
    for line in lines:
        text, confidence = line.split("\t")
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", text) and 0 < float(confidence) <= 1, line
    missing = subprocess.run([sys.executable, "-P", "-m", "hyperseg_ros.speech.transcribe", "--engine", "whisper",
                              str(files[0])], env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and not missing.stdout
    assert len(missing.stderr.strip().splitlines()) == 1 and "whisper_model_path" in missing.stderr
