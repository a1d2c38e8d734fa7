"""Every word the world's commands and the model's prompt templates use: the word-level tokenizer's
vocabulary. `UNKNOWN` words are left out on purpose so the model learns to ignore out-of-vocabulary
words (they become the tokenizer's unknown token)."""
from __future__ import annotations

import re
from types import ModuleType

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


def module_words(module: ModuleType) -> set[str]:
    """Words of a module's public constants (strings and containers of strings)."""
    return set().union(*(words_in(v) for k, v in vars(module).items() if not k.startswith("_")))


def world_words() -> list[str]:
    """Sorted words of the world: names, descriptions, reasoning clues, operator phrasing."""
    words = words_in([SHAPES, list(COLOURS), list(SIZES)]) | module_words(commands)
    return sorted(words - words_in(commands.UNKNOWN))


def vocabulary() -> list[str]:
    """World words plus the words of the model's prompt templates (hyperseg_ros.model.prompts)."""
    from hyperseg_ros.model import prompts

    return sorted(set(world_words()) | module_words(prompts))
