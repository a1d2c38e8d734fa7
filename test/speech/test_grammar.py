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


@pytest.mark.parametrize("sentence", [
    "the small star",  # a size comes only with a colour and a shape
    "the small red thing",
    "the largest small red star",  # a superlative names one or two of colour and shape
    "the red star left of the blue one",  # a relation's anchor is a colour and a shape
    "the red star left of the cross",
    "the red star on the left below the blue cross",  # one of position, superlative, relation
    "the red shape coloured like blood",  # a colour property is narrowed by a shape, not a colour
    "the star with three corners",  # and a corner or shape property by a colour
    "the thing with three corners",  # "thing" is no reasoning stand-in
])
def test_the_grammar_refuses_what_the_world_never_says(sentence):
    assert not grammar.in_language(sentence)


def test_the_grammar_accepts_each_phrase_form():
    for s in ("pick up the red thing", "the star", "grab the red star", "the small red star",
              "thanks find the leftmost red star please", "the red one at the top",
              "the small red star to the left of the blue cross", "red star please",
              "the red shape with three corners", "the star coloured like blood",
              "the object that looks like a wheel thank you please"):
        assert grammar.in_language(s), s


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
