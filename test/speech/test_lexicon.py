"""Pronunciations: the bundled dictionary plus compounds for the world's words it lacks."""
import pytest

from hyperseg_ros.speech import grammar, lexicon

pocketsphinx = pytest.importorskip("pocketsphinx")


def test_every_grammar_word_is_pronounced_and_the_missing_ones_are_compounds():
    from hyperseg_ros.speech.recognizer import model_dir

    dictionary = model_dir() / "cmudict-en-us.dict"
    bundled = lexicon.read_dictionary(dictionary, set(grammar.grammar_words()))
    entries = lexicon.lexicon(grammar.grammar_words(), dictionary)
    assert set(entries) == set(grammar.grammar_words())
    missing = sorted(set(entries) - set(bundled))
    assert missing == ["bottom-most", "leftmost", "rightmost", "topmost"]
    assert entries["leftmost"] == ["L EH F T M OW S T"]
    assert entries["bottom-most"] == ["B AA T AH M M OW S T"]


def test_an_unpronounceable_word_is_named(tmp_path):
    d = tmp_path / "tiny.dict"
    d.write_text("red R EH D\n")
    with pytest.raises(ValueError, match="zorblax"):
        lexicon.lexicon(["red", "zorblax"], d)
