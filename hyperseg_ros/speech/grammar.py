"""The spoken command language as a grammar, built from the world's own phrase tables.

Every word list comes from `hyperseg_ros.world` (commands.py and scene.py), the place the world
draws its commands from, so a word added there reaches the recogniser without a second list. The
phrase forms mirror `commands.render` (referring) and `commands._reasoning_text` (reasoning).
One grammar object renders to JSGF (for pocketsphinx) and to a regular expression (to check, in
the tests, that every sentence the world draws is in the language).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from hyperseg_ros.world import commands
from hyperseg_ros.world.scene import COLOURS, SHAPES, SIZES

# Not command words: the world inserts them at random places to teach the model to ignore them.
# A listener drops them too, so they are not in the spoken form of a command.
DROPPED_WORDS = frozenset(commands.FILLERS) | frozenset(commands.UNKNOWN)
# The world writes some words two ways ("in the center", "in the centre"); said aloud they are one
# word, so the spoken form and the grammar keep one spelling.
SPELLINGS = {"center": "centre"}
_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*")


def spoken_form(text: str) -> str:
    """What a person says for a typed command: lower case, no punctuation, no fillers or words
    outside the command language, one spelling per word ("Um, pick up the red star in the center!"
    -> "pick up the red star in the centre")."""
    return " ".join(SPELLINGS.get(w, w) for w in _TOKEN.findall(text.lower()) if w not in DROPPED_WORDS)


@dataclass(frozen=True)
class Rule:
    """A named part of the grammar: alternatives, each a sequence of words and `<rule>` references;
    a `[...]` around a part makes it optional (JSGF syntax)."""

    name: str
    alternatives: tuple[str, ...]
    public: bool = False


def _words(phrases) -> tuple[str, ...]:
    return tuple(sorted({" ".join(SPELLINGS.get(w, w) for w in p.lower().split()) for p in phrases if p}))


def _template(template: str, kind: str) -> str:
    """A world reasoning template ("the {noun} with {words}") with its fields as rule references."""
    return template.replace("{noun}", f"<noun_{kind}>").replace("{words}", f"<known_{kind}>")


def command_rules() -> tuple[Rule, ...]:
    """The command language, phrase form by phrase form as `commands` draws it (the comments name
    the function each rule mirrors): [polite] [leading phrase] (referring | reasoning) [polite] [please]."""
    positions = [p for phrases in commands.POSITION_PHRASES.values() for p in phrases]
    relations = [p for phrases in commands.RELATIONS.values() for p in phrases]
    known = {"corners": commands.CORNER_WORDS, "colour": commands.COLOUR_KNOWLEDGE, "shape": commands.SHAPE_KNOWLEDGE}
    rules = [
        # operator_phrasing: a polite word before, after, or both ("..., thank you please.")
        Rule("command", ("[<polite>] [<leading>] (<referring> | <reasoning>) [<polite>] [please]",), public=True),
        Rule("polite", _words(commands.POLITE)),
        Rule("leading", _words(commands.LEADING)),
        Rule("size", _words(SIZES)),
        Rule("colour", _words(COLOURS)),
        Rule("shape", _words(SHAPES)),
        Rule("stand_in", _words(commands.NOUNS)),
        # _plain names one or two of colour and shape, or all three with the size; _noun puts a
        # stand-in for a missing shape: "red thing", "star", "red star", "small red star". An absent
        # object (_absent_description) is a colour and a shape, sometimes with a size.
        Rule("short", ("<colour> (<shape> | <stand_in>)", "<shape>")),
        Rule("named", ("<short>", "<size> <colour> <shape>")),
        Rule("superlative", _words(commands.SUPERLATIVES)),
        Rule("position", _words(positions)),
        Rule("relation", _words(relations)),
        # render: a superlative, a position or a relation, never two; a relation's anchor is
        # _plain(.., 2), a colour and a shape. operator_phrasing drops the first "the" sometimes.
        Rule("referring", ("[the] <superlative> <short>",
                           "[the] <named> [<position> | <relation> the <colour> <shape>]")),
    ]
    reasoning = []
    for kind, templates in commands.REASONING_TEMPLATES.items():
        # _reasoning_text: a stand-in noun, or the one more attribute reasoning() names: the shape
        # for a colour property, else the colour ("red shape")
        extra = "<shape>" if kind == "colour" else "<colour> shape"
        rules.append(Rule(f"noun_{kind}", _words(commands.REASONING_NOUNS) + (extra,)))
        rules.append(Rule(f"known_{kind}", _words(known[kind])))
        reasoning += ["[the] " + _template(t.removeprefix("the "), kind) for t in templates]
    rules.append(Rule("reasoning", tuple(sorted(set(reasoning)))))
    return tuple(rules)


def jsgf(rules: tuple[Rule, ...] | None = None) -> str:
    """The grammar in JSGF, as pocketsphinx reads it."""
    rules = rules or command_rules()
    lines = ["#JSGF V1.0;", "grammar command;"]
    for r in rules:
        lines.append(f"{'public ' if r.public else ''}<{r.name}> = {' | '.join(r.alternatives)};")
    return "\n".join(lines) + "\n"


def _regex_of(expr: str, rules: dict[str, Rule], depth: int = 0) -> str:
    if depth > 20:
        raise ValueError("grammar rules nest too deeply (a cycle?)")
    out = []
    for token in re.findall(r"<[a-z_]+>|[\[\]()|]|[^\s\[\]()|<>]+", expr):
        if token.startswith("<"):
            rule = rules[token[1:-1]]
            out.append("(?:" + "|".join(_regex_of(a, rules, depth + 1) for a in rule.alternatives) + ")")
        elif token == "[":
            out.append("(?:")
        elif token == "]":
            out.append(")?")
        elif token == "(":
            out.append("(?:")
        elif token in (")", "|"):
            out.append(token)
        else:
            out.append(f"(?:{re.escape(token)} )")
    return "".join(out)


@lru_cache(maxsize=1)
def sentence_pattern() -> re.Pattern:
    """A regular expression that matches exactly the sentences of the grammar (words joined by
    one space)."""
    rules = {r.name: r for r in command_rules()}
    return re.compile(_regex_of("<command>", rules))


def in_language(sentence: str) -> bool:
    return sentence_pattern().fullmatch(sentence + " ") is not None


@lru_cache(maxsize=1)
def _description_pattern() -> re.Pattern:
    rules = {r.name: r for r in command_rules()}
    return re.compile(_regex_of("[<polite>] [<leading>] [the]", rules) + "(?P<description>"
                      + _regex_of("(<referring> | <reasoning>)", rules) + ")" + _regex_of("[<polite>] [please]", rules))


def description(sentence: str) -> str | None:
    """What a command asks for: the sentence without its leading phrase, politeness and first "the"
    ("thanks grab the red star please" -> "red star"); None outside the language. Two sentences
    with one description select the same object."""
    m = _description_pattern().fullmatch(sentence + " ")
    if m is None:
        return None
    words = m.group("description").split()
    return " ".join(words[1:] if words[:1] == ["the"] else words)


def grammar_words(rules: tuple[Rule, ...] | None = None) -> list[str]:
    """Every word the grammar can say (the dictionary must know each one)."""
    words = set()
    for r in rules or command_rules():
        for alt in r.alternatives:
            words |= {w for w in re.findall(r"[^\s\[\]()|<>]+", re.sub(r"<[a-z_]+>", " ", alt))}
    return sorted(words)
