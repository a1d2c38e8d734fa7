"""A tiny random-weight Whisper saved as a real checkpoint is (safetensors, feature extractor,
byte-level BPE tokenizer with Whisper's special tokens, generation config), for the engine tests."""
from __future__ import annotations

from pathlib import Path

SPECIAL = ("<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|de|>", "<|translate|>", "<|transcribe|>",
           "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>")  # Whisper's order
MERGES = (("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("Ġ", "r"), ("e", "d"), ("Ġr", "ed"))  # " the", " red"


TINY = dict(num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_source_positions=1500,
            max_target_positions=40)


def save_tiny_whisper(path: Path, seed: int = 0, multilingual: bool = True, **shape) -> Path:
    """`shape`: WhisperConfig fields over TINY (scripts/whisper_cost.py builds a released model's shape)."""
    import torch
    from tokenizers import pre_tokenizers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}  # the 256 bytes
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    tokenizer = WhisperTokenizer(vocab=vocab, merges=list(MERGES))
    tokenizer.add_special_tokens({"additional_special_tokens": list(SPECIAL[1:])})
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in SPECIAL}
    eot = ids["<|endoftext|>"]
    config = WhisperConfig(**{"vocab_size": len(tokenizer), **TINY, **shape}, pad_token_id=eot, bos_token_id=eot,
                           eos_token_id=eot, decoder_start_token_id=ids["<|startoftranscript|>"])
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    # as real checkpoints suppress symbols: here all but letters and spaces (and ids the tokenizer
    # lacks), so the text is words
    spoken = {vocab[c] for c in "abcdefghijklmnopqrstuvwxyzĠ"} | {vocab[a + b] for a, b in MERGES}
    suppressed = (set(range(256)) - spoken) | set(range(len(tokenizer), config.vocab_size))
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=eot, pad_token_id=eot, bos_token_id=eot,
        max_length=config.max_target_positions, is_multilingual=multilingual,
        lang_to_id={s: ids[s] for s in ("<|en|>", "<|de|>")},
        task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"], begin_suppress_tokens=[eot],
        suppress_tokens=sorted(suppressed))
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)  # model.safetensors, config.json, generation_config.json
    WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
