"""Pronunciations: the bundled dictionary plus compounds and variants for the world's words it lacks."""
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


def test_the_variants_are_of_grammar_words_and_add_to_the_dictionary():
    """A variant of a word the world no longer says would be dead; one the dictionary already has adds
    nothing."""
    from hyperseg_ros.speech.recognizer import model_dir

    dictionary = model_dir() / "cmudict-en-us.dict"
    bundled = lexicon.read_dictionary(dictionary, set(lexicon.VARIANTS))
    entries = lexicon.lexicon(grammar.grammar_words(), dictionary)
    assert set(lexicon.VARIANTS) <= set(grammar.grammar_words())
    for word, variants in lexicon.VARIANTS.items():
        assert not set(variants) & set(bundled[word]), word
        assert entries[word] == bundled[word] + list(variants)


def test_an_unpronounceable_word_is_named(tmp_path):
    d = tmp_path / "tiny.dict"
    d.write_text("red R EH D\n")
    with pytest.raises(ValueError, match="zorblax"):
        lexicon.lexicon(["red", "zorblax"], d)
