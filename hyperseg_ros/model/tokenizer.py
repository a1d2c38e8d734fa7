"""Tokenizers: a small word-level one for the embedded model, the checkpoint's own for 3B.

The word-level tokenizer lowercases, splits on whitespace and punctuation, and maps every word
it has not seen to [UNK], so filler words an operator adds ("please", "uh") cannot derail it.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from .prompts import END, SEG, TEMPLATE_WORDS

PAD, UNK = "[PAD]", "[UNK]"
SPECIAL_TOKENS = (PAD, UNK, SEG, END)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")  # either describes a saved tokenizer


def _splitter() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])


def build_word_tokenizer(words: Iterable[str]) -> PreTrainedTokenizerFast:
    """A WordLevel tokenizer over `words` (words or whole sentences) plus the template words.

    Ids: [PAD]=0, [UNK]=1, [SEG]=2, <|endoftext|>=3, then the words in sorted order.
    """
    normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    splitter = _splitter()
    vocab_words: set[str] = set(TEMPLATE_WORDS)
    for text in words:
        vocab_words.update(piece for piece, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab_words -= set(SPECIAL_TOKENS)
    vocab = {tok: i for i, tok in enumerate(list(SPECIAL_TOKENS) + sorted(vocab_words))}

    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.normalizer = normalizer
    backend.pre_tokenizer = splitter
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=PAD, unk_token=UNK, eos_token=END,
                                   additional_special_tokens=[SEG])


def load_tokenizer(path: str) -> PreTrainedTokenizerBase:
    """The tokenizer saved in a local model directory (never a hub id), with [SEG] present.
    Errors name the directory (transformers' own would only suggest installing packages)."""
    if not any((Path(path) / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(f"{path}: no tokenizer ({' or '.join(TOKENIZER_FILES)} missing)")
    try:  # tokenizer.json is self-describing; AutoTokenizer would also read (and warn about) our config.json
        if (Path(path) / "tokenizer.json").is_file():
            tokenizer = PreTrainedTokenizerFast.from_pretrained(path, local_files_only=True)
        else:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as err:  # noqa: BLE001 - a malformed file raises anything (KeyError, RecursionError, ...)
        raise ValueError(f"{path}: cannot load the tokenizer ({type(err).__name__}: {str(err)[:200]})") from None
    if SEG not in tokenizer.get_vocab():
        tokenizer.add_tokens([SEG])  # as the release does for Phi-2's BPE vocabulary
    return tokenizer


def seg_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    return int(tokenizer.convert_tokens_to_ids(SEG))
