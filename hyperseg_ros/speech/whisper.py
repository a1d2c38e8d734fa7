"""Engine `whisper`: a Whisper checkpoint from a local directory, through transformers.

Open speech, not restricted to the command language: the text is brought to the grammar engine's
form (lower case, no punctuation, no fillers) so the command topic carries the same sentences.
Nothing is downloaded, and only safetensors weights are read. The confidence is the geometric
mean of the best sequence's token probabilities (end of text included), the per-token analogue of
the grammar engine's per-word posterior; the alternatives are the other beams.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperseg_ros.speech.audio import TARGET_RATE
from hyperseg_ros.speech.grammar import spoken_form
from hyperseg_ros.speech.recognizer import Recognition

WEIGHTS = "model.safetensors"
SHARDED_WEIGHTS = "model.safetensors.index.json"  # a large checkpoint split in several files


@dataclass(frozen=True)
class Hypothesis:
    tokens: tuple[int, ...]  # generated after the prompt, end of text included when reached
    log_prob: float  # mean log-probability per token
    text: str  # as decoded, before normalisation


def normalise(text: str) -> str:
    """Whisper's cased, punctuated text in the grammar engine's form ("Pick up the red star!" ->
    "pick up the red star"); apostrophes go first so "don't" stays one word."""
    return spoken_form(text.replace("'", "").replace("\u2019", ""))


def check_directory(path: str) -> Path:
    """The model directory named by `whisper_model_path`, or ValueError saying what is wrong."""
    if not str(path).strip():
        raise ValueError("engine whisper needs whisper_model_path: a local Whisper model directory "
                         "(config.json, model.safetensors, tokenizer, preprocessor_config.json)")
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise ValueError(f"whisper_model_path {str(path)!r} is not a directory")
    if not (directory / WEIGHTS).is_file() and not (directory / SHARDED_WEIGHTS).is_file():
        found = sorted(p.name for p in directory.glob("*.bin"))
        raise ValueError(f"whisper_model_path {directory}: no {WEIGHTS} (only safetensors weights are loaded"
                         + (f"; found {', '.join(found)}" if found else "") + ")")
    return directory


class WhisperRecognizer:
    """`recognize(samples_16k) -> Recognition`, like GrammarRecognizer."""

    def __init__(self, path: str, language: str = "en", num_beams: int = 2, n_alternatives: int = 3,
                 max_new_tokens: int = 64):
        directory = check_directory(path)  # before importing transformers: a wrong path fails at once
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        try:
            processor = WhisperProcessor.from_pretrained(str(directory), local_files_only=True)
            model, info = WhisperForConditionalGeneration.from_pretrained(
                str(directory), local_files_only=True, use_safetensors=True, output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as err:
            raise ValueError(f"whisper_model_path {directory}: {type(err).__name__}: {err}") from None
        # transformers fills weights the file lacks with random numbers: refuse rather than babble
        missing = sorted(info.get("missing_keys") or ()) + sorted(str(k) for k in info.get("mismatched_keys") or ())
        if missing:
            raise ValueError(f"whisper_model_path {directory}: {WEIGHTS} lacks {', '.join(missing[:3])}"
                             + (f" ... ({len(missing)} in all)" if len(missing) > 3 else ""))
        self.model = model.eval()
        self.features, self.tokenizer = processor.feature_extractor, processor.tokenizer
        self.prompt = self._prompt(language, directory)
        eos = self.model.generation_config.eos_token_id
        self.eos = eos[0] if isinstance(eos, list) else eos  # some configs give a list
        self.num_beams, self.n_alternatives = max(1, num_beams), n_alternatives
        self.max_length = min(len(self.prompt) + max_new_tokens, self.model.config.max_target_positions)

    def _prompt(self, language: str, directory: Path) -> list[int]:
        """Start of transcript, [language, transcribe,] no timestamps: what Whisper expects before the
        text. Fine-tuned checkpoints often save a generation config without the token maps: the
        tokenizer's special tokens stand in, and 51865+ tokens mean multilingual (English-only
        checkpoints have 51864)."""
        gc = self.model.generation_config

        def special(token: str, table: dict | None = None, key: str | None = None) -> int:
            if table and (key or token) in table:
                return table[key or token]
            found = self.tokenizer.convert_tokens_to_ids(token)
            if found is None or found == self.tokenizer.unk_token_id:
                raise ValueError(f"whisper_model_path {directory}: the tokenizer has no {token}")
            return found

        multilingual = getattr(gc, "is_multilingual", None)
        if multilingual is None:
            multilingual = self.model.config.vocab_size >= 51865
        prompt = [gc.decoder_start_token_id]
        if multilingual:
            try:
                prompt.append(special(f"<|{language}|>", getattr(gc, "lang_to_id", None)))
            except ValueError:
                raise ValueError(f"whisper_model_path {directory}: the model has no language {language!r}") from None
            prompt.append(special("<|transcribe|>", getattr(gc, "task_to_id", None), "transcribe"))
        elif language != "en":
            raise ValueError(f"whisper_model_path {directory}: an English-only model, not {language!r}")
        notimestamps = getattr(gc, "no_timestamps_token_id", None)
        return prompt + [notimestamps if notimestamps is not None else special("<|notimestamps|>")]

    def close(self) -> None:
        pass

    def hypotheses(self, samples: np.ndarray) -> list[Hypothesis]:
        """The beams for one utterance (float32 mono at 16 kHz; Whisper hears its first 30 s), best first."""
        import torch
        from transformers import GenerationConfig
        from transformers.generation import GenerationMixin

        features = self.features(np.asarray(samples, np.float32), sampling_rate=TARGET_RATE,
                                 return_tensors="pt").input_features
        gc = self.model.generation_config
        config = GenerationConfig(
            decoder_start_token_id=gc.decoder_start_token_id, eos_token_id=self.eos,
            pad_token_id=gc.pad_token_id if gc.pad_token_id is not None else self.eos,
            suppress_tokens=gc.suppress_tokens, begin_suppress_tokens=gc.begin_suppress_tokens,
            num_beams=self.num_beams, num_return_sequences=self.num_beams, max_length=self.max_length,
            do_sample=False, output_scores=True, return_dict_in_generate=True)
        prompt = torch.tensor([self.prompt])
        with torch.inference_mode():
            # the base class's search: Whisper's own generate repeats the input per returned sequence
            # instead of returning the other beams
            out = GenerationMixin.generate(self.model, input_features=features, decoder_input_ids=prompt,
                                           generation_config=config)
            steps = self.model.compute_transition_scores(out.sequences, out.scores, getattr(out, "beam_indices", None),
                                                         normalize_logits=True)
        result = []
        for sequence, scores in zip(out.sequences[:, len(self.prompt):].tolist(), steps.tolist()):
            n = sequence.index(self.eos) + 1 if self.eos in sequence else len(sequence)
            text = self.tokenizer.decode(sequence[:n], skip_special_tokens=True)
            result.append(Hypothesis(tuple(sequence[:n]), sum(scores[:n]) / max(n, 1), text))
        return sorted(result, key=lambda h: -h.log_prob)

    def recognize(self, samples: np.ndarray) -> Recognition:
        best, *rest = self.hypotheses(samples)
        text = normalise(best.text)
        if not text:
            return Recognition("", 0.0)
        alternatives: list[str] = []
        for h in rest:
            alt = normalise(h.text)
            if alt and alt != text and alt not in alternatives and len(alternatives) < self.n_alternatives:
                alternatives.append(alt)
        return Recognition(text, min(max(math.exp(best.log_prob), 0.0), 1.0), tuple(alternatives))
