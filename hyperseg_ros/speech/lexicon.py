"""Pronunciations for the grammar's words: the bundled CMU dictionary, plus compounds and variants it lacks.

The bundled `cmudict-en-us.dict` has no "leftmost", "rightmost", "topmost" or "bottom-most"; a
decoder refuses a grammar with a word it cannot pronounce. A missing word that is two known words
joined (with or without a hyphen) is pronounced as the first then the second.

The dictionary is American and gives most words one pronunciation; `VARIANTS` adds the ones that
the command words lost most often without (measured in docs/MEASUREMENTS.md, "Speech").
"""
from __future__ import annotations

from pathlib import Path

# word -> further pronunciations, each with why
VARIANTS = {
    "select": ("S IH L EH K T",),  # /sɪˈlɛkt/, its usual pronunciation; the dictionary has only S AH L EH K T
    # The acoustic model hears this word's weak /f/ as /θ/ (its phone loop gives TH for it in every
    # voice), and without this path the grammar took "get" (G IH T) instead. No other grammar word
    # begins with TH EH.
    "fetch": ("TH EH CH",),
}


def read_dictionary(path: Path, wanted: set[str] | None = None) -> dict[str, list[str]]:
    """word -> its pronunciations (phone strings), variants "word(2)" folded into the word."""
    entries: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split(None, 1)
            if len(parts) != 2:
                continue
            word = parts[0].split("(", 1)[0]
            if wanted is None or word in wanted:
                entries.setdefault(word, []).append(parts[1].split("#", 1)[0].strip())
    return entries


def compound(word: str, known: dict[str, list[str]]) -> list[str] | None:
    """Pronunciations of a word made of two known words ("leftmost" = left + most), or None."""
    if "-" in word:
        head, _, tail = word.partition("-")
        splits = [(head, tail)]
    else:
        splits = [(word[:i], word[i:]) for i in range(2, len(word) - 1)]
    for head, tail in splits:
        if head in known and tail in known:
            return [f"{a} {b}" for a in known[head][:1] for b in known[tail][:1]]
    return None


def lexicon(words: list[str], dictionary: Path) -> dict[str, list[str]]:
    """Pronunciations of `words`; raises ValueError naming the words it cannot pronounce."""
    pieces = set(words) | {p for w in words for p in w.split("-")}
    pieces |= {w[:i] for w in words for i in range(2, len(w) - 1)} | {w[i:] for w in words for i in range(2, len(w))}
    known = read_dictionary(dictionary, pieces)
    out, missing = {}, []
    for w in words:
        prons = known.get(w) or compound(w, known)
        if prons:
            out[w] = prons + [v for v in VARIANTS.get(w, ()) if v not in prons]
        else:
            missing.append(w)
    if missing:
        raise ValueError(f"no pronunciation for {', '.join(missing)} in {dictionary}")
    return out


def write_dictionary(entries: dict[str, list[str]], path: Path) -> Path:
    """A pocketsphinx dictionary file (word, then "word(2)" for each further pronunciation)."""
    lines = [f"{w if i == 0 else f'{w}({i + 1})'} {p}" for w in sorted(entries) for i, p in enumerate(entries[w])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
