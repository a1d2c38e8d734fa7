"""Shared fixtures of the model tests: the tiny HyperSeg with a small word tokenizer, and its model directory."""
import shutil

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


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory):
    """The tiny model saved as a model directory (config.json, model.safetensors, tokenizer), once per module."""
    path = tmp_path_factory.mktemp("saved") / "tiny"
    model, tokenizer = tiny
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def model_copy(saved, tmp_path):
    """A copy of `saved` that a test may break."""
    return shutil.copytree(saved, tmp_path / "model")
