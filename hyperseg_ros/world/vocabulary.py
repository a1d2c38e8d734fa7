"""Every word the world's commands and the model's prompt templates use: the word-level tokenizer's
vocabulary. `UNKNOWN` words are left out on purpose so the model learns to ignore out-of-vocabulary
words (they become the tokenizer's unknown token)."""
from __future__ import annotations

import re

from hyperseg_ros.world import commands
from hyperseg_ros.world.scene import COLOURS, SHAPES, SIZES

_WORD = re.compile(r"[a-z]+")
_FIELD = re.compile(r"\{[^}]*\}")  # str.format fields of templates are not words


def words_in(value) -> set[str]:
    """Lower-case words inside a string or any nesting of tuples, lists, sets and dicts of strings."""
    if isinstance(value, str):
        return set(_WORD.findall(_FIELD.sub(" ", value.lower())))
    if isinstance(value, dict):
        return words_in(list(value.keys())) | words_in(list(value.values()))
    if isinstance(value, (tuple, list, set, frozenset)):
        return set().union(*(words_in(v) for v in value)) if value else set()
    return set()


# The phrasing tables of world/commands.py whose words the commands use, named one by one: a
# constant added there for another purpose must not change the tokenizer (and so the weights' rows).
PHRASING = (commands.POSITIONS, commands.POSITION_PHRASES, commands.SUPERLATIVES, commands.RELATIONS,
            commands.NOUNS, commands.CORNER_WORDS, commands.COLOUR_KNOWLEDGE, commands.SHAPE_KNOWLEDGE,
            commands.REASONING_TEMPLATES, commands.REASONING_PROPERTIES, commands.LEADING, commands.POLITE,
            commands.FILLERS)
# Words of an open-vocabulary phrasing ("find all", "show me every", "detect") that no command uses
# any more. The shipped tokenizer (models/hyperseg-world) has them and the shipped weights index its
# rows, so they stay until the model is retrained with a new tokenizer.
RETIRED_WORDS = ("all", "detect", "every")


def world_words() -> list[str]:
    """Sorted words of the world: names, descriptions, reasoning clues, operator phrasing."""
    words = words_in([SHAPES, list(COLOURS), list(SIZES), *PHRASING, RETIRED_WORDS])
    return sorted(words - words_in(commands.UNKNOWN))


def vocabulary() -> list[str]:
    """World words plus the words of the model's prompt templates (hyperseg_ros.model.prompts)."""
    from hyperseg_ros.model.prompts import TEMPLATE_WORDS

    return sorted(set(world_words()) | TEMPLATE_WORDS)
