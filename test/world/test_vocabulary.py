"""The word list the tokenizer is built from still builds the shipped model's tokenizer exactly."""
from pathlib import Path

import pytest

from hyperseg_ros.model.tokenizer import build_word_tokenizer, load_tokenizer
from hyperseg_ros.world import commands
from hyperseg_ros.world.vocabulary import PHRASING, RETIRED_WORDS, words_in, world_words

EMBEDDED_MODEL = Path(__file__).resolve().parents[2] / "models" / "hyperseg-world"


@pytest.mark.skipif(not (EMBEDDED_MODEL / "tokenizer.json").is_file(), reason="no embedded model")
def test_world_words_build_the_shipped_tokenizer():
    shipped = load_tokenizer(str(EMBEDDED_MODEL)).get_vocab()
    assert build_word_tokenizer(world_words()).get_vocab() == shipped  # same words, same ids


def test_retired_words_are_used_by_no_command_table_and_unknown_words_stay_out():
    used = words_in(list(PHRASING))
    assert not set(RETIRED_WORDS) & used, "a retired word is used again: drop it from RETIRED_WORDS"
    assert not words_in(commands.UNKNOWN) & set(world_words())
