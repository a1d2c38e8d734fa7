"""Shared fixtures of the model tests: the tiny HyperSeg with a small word tokenizer."""
import pytest
import torch
from tiny_model import WORDS


@pytest.fixture(scope="session")
def tiny():
    """(HyperSeg tiny, tokenizer), seeded, eval mode, 1 thread."""
    from hyperseg_ros.model.config import HyperSegConfig
    from hyperseg_ros.model.hyperseg import HyperSeg
    from hyperseg_ros.model.tokenizer import build_word_tokenizer

    torch.set_num_threads(1)
    torch.manual_seed(0)
    tokenizer = build_word_tokenizer(WORDS)
    model = HyperSeg(HyperSegConfig.from_size("tiny", vocab_size=len(tokenizer))).eval()
    return model, tokenizer
