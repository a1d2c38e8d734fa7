"""The command grammar is built from the world's tables and covers what the world says."""
import pytest

from hyperseg_ros.speech import grammar
from hyperseg_ros.speech.spoken import world_sentences
from hyperseg_ros.world import commands


@pytest.mark.parametrize("split", ["val", "shifted"])
def test_every_world_command_is_in_the_language(split):
    sentences = world_sentences(split, 300)
    missing = [s for s in sentences if not grammar.in_language(s)]
    assert not missing, missing[:5]


def test_sentences_outside_the_command_language_are_refused():
    for s in ("bring me a cup of coffee", "the red", "red circle the", "pick up the the red star",
              "the star coloured like a circle"):
        assert not grammar.in_language(s), s


def test_a_word_added_to_the_world_reaches_the_grammar(monkeypatch):
    monkeypatch.setattr(commands, "LEADING", commands.LEADING + ("fetch me",))
    assert "<leading> = " in grammar.jsgf() and "fetch me" in grammar.jsgf()
    grammar.sentence_pattern.cache_clear()
    try:
        assert grammar.in_language("fetch me the red star")
    finally:
        monkeypatch.undo()
        grammar.sentence_pattern.cache_clear()
    assert not grammar.in_language("fetch me the red star")


def test_spoken_form_drops_case_punctuation_fillers_and_unknown_words():
    assert grammar.spoken_form("Um, PICK up the robot Bottom-Most star, please!") == "pick up the bottom-most star please"
