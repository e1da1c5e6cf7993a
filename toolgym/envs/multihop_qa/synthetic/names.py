"""Invented, pronounceable names for the synthetic world's entities and their distractor twins.

Every word claims its stem for the whole world (and the fixed wording's words and stems are
reserved up front), so a BM25 search for a name finds only that name's passages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import Stemmer

# Syllables are (onset, vowel); a word is 2-3 of them plus an optional final consonant, which
# keeps names pronounceable ("Velamor", "Tirasen") while leaving millions of distinct words.
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "h", "j",
           "b", "d", "k", "l", "m", "n", "r", "s", "t", "v", "br", "dr", "kr", "tr", "th", "st", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "a", "e", "ai", "ei", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "k", "m", "n", "r")
_PLAIN_VOWELS = "aeiou"
_DOUBLE_VOWEL = re.compile(r"([aeiou])\1")

# Fixed words of names (companies' suffixes, the forms of universities', films' and books' names).
_ORG_SUFFIXES = ("Industries", "Group", "Holdings", "Systems", "Foundry", "Trading House", "Labs", "Partners")
_BOOK_NAME_FORMS = ("The {w} {v}", "{w}", "The {w}", "{w} and {v}")
_FILM_NAME_FORMS = ("{w} {v}", "The {w}", "{w} of {v}", "{w}")
_UNIVERSITY_FORMS = ("Academy of {w}", "{w} College", "{w} Institute of Technology", "{w} Polytechnic")

_STEMMER = Stemmer.Stemmer("english")


def _stem(word: str) -> str:
    return _STEMMER.stemWord(word.lower())


def reserved_words(wording: Iterable[str]) -> set[str]:
    """What invented words must not be or stem to: every word of the fixed ``wording`` (passages,
    questions) and of the name forms, their stems, and the pronouns."""
    pieces = [*wording, *_ORG_SUFFIXES, *_BOOK_NAME_FORMS, *_FILM_NAME_FORMS, *_UNIVERSITY_FORMS]
    words = {w for piece in pieces for w in re.findall(r"[A-Za-z]+", piece)}
    return {_stem(w) for w in words} | words | {"he", "she", "it", "they", "his", "her"}


class Namer:
    """Invented words with globally unique stems: BM25 on a name finds only that name's passages."""

    def __init__(self, rng: np.random.Generator, taken: set[str]):
        self.rng = rng
        self.taken = taken
        self._buffer: list[str] = []

    def reseed(self, rng: np.random.Generator) -> None:
        """Draw from ``rng`` from now on; the words drawn ahead from the old one are dropped."""
        self.rng, self._buffer = rng, []

    def _refill(self, n: int = 2048) -> None:
        rng = self.rng
        n_syll = rng.choice([2, 2, 3], size=n)
        onsets = rng.integers(len(_ONSETS), size=(n, 3))
        vowels = rng.integers(len(_VOWELS), size=(n, 3))
        codas = rng.integers(len(_CODAS), size=n)
        bare_start = rng.random(n) < 0.15
        words = []
        for i in range(n):
            parts = [("" if (j == 0 and bare_start[i]) else _ONSETS[onsets[i, j]]) + _VOWELS[vowels[i, j]]
                     for j in range(int(n_syll[i]))]
            words.append(("".join(parts) + _CODAS[codas[i]]).capitalize())
        self._buffer = words[::-1]

    def _claim(self, word: str) -> bool:
        if not 4 <= len(word) <= 11:
            return False
        stem = _stem(word)
        if stem in self.taken or word.lower() in self.taken:
            return False
        self.taken.add(stem)
        self.taken.add(word.lower())
        return True

    def word(self) -> str:
        while True:
            if not self._buffer:
                self._refill()
            word = self._buffer.pop()
            if self._claim(word):
                return word

    def near(self, word: str) -> str:
        """A near spelling of ``word`` (one vowel or the last letter changed) with a fresh stem."""
        for _ in range(30):
            letters = list(word.lower())
            vowel_at = [i for i, ch in enumerate(letters) if ch in _PLAIN_VOWELS]
            if vowel_at and self.rng.random() < 0.7:
                i = int(vowel_at[self.rng.integers(len(vowel_at))])
                letters[i] = _PLAIN_VOWELS[self.rng.integers(5)]
            else:
                pool = "aeiou" if letters[-1] in _PLAIN_VOWELS else "nrlmk"
                letters[-1] = pool[self.rng.integers(len(pool))]
            candidate = "".join(letters).capitalize()
            if _DOUBLE_VOWEL.search(candidate.lower()):  # "Rosaa" reads as a typo, not a name
                continue
            if candidate.lower() != word.lower() and self._claim(candidate):
                return candidate
        return self.word()

    def pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]


def make_name(namer: Namer, kind: str, short: bool = False) -> tuple[str, dict]:
    """A fresh name of ``kind`` and the recipe (form and words) its distractor twins vary
    (``short``: one word for people and films)."""
    if short and kind in ("person", "film"):
        form = "{w}"
    elif kind == "person":
        form = "{w} {v}"
    elif kind == "org":
        form = "{w} " + namer.pick(_ORG_SUFFIXES)
    elif kind == "university":
        form = namer.pick(_UNIVERSITY_FORMS)
    elif kind == "film":
        form = namer.pick(_FILM_NAME_FORMS)
    elif kind == "book":
        form = namer.pick(_BOOK_NAME_FORMS)
    else:  # city, country: one word
        form = "{w}"
    recipe = {"form": form, "w": namer.word(), "v": namer.word() if "{v}" in form else ""}
    return form.format(**recipe), recipe


def twin_name(namer: Namer, recipe: dict) -> str:
    """A similar name: keep one word, respell the other (one-word names: respell it)."""
    twin = dict(recipe)
    if recipe["v"] and namer.rng.random() < 0.5:
        twin["v"] = namer.near(recipe["v"])
    else:
        twin["w"] = namer.near(recipe["w"])
    return recipe["form"].format(**twin)
