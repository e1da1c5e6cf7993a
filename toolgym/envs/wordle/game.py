"""Wordle's rules: the bundled word lists, the feedback of a guess, and consistent candidates."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources

WORD_LENGTH = 5
CORRECT, PRESENT, ABSENT = "G", "Y", "-"


@lru_cache(maxsize=1)
def load_words() -> tuple[tuple[str, ...], frozenset[str]]:
    """``(answers, allowed)``: the secret words (the 2,500 most frequent) and every valid guess.

    Bundled in the package (``words.json``): five-letter lowercase words of the Debian
    ``wamerican`` dictionary (SCOWL), ranked by English word frequency; no download.
    """
    data = json.loads(resources.files("toolgym.envs.wordle").joinpath("words.json").read_text(encoding="utf-8"))
    return tuple(data["answers"]), frozenset(data["allowed"])


def feedback(guess: str, secret: str) -> str:
    """The pattern of a guess: ``G`` right letter in the right spot, ``Y`` in the word elsewhere,
    ``-`` not in the word (or all of its copies are already accounted for).

    Repeated letters follow the game: greens first, then yellows while copies remain.

    >>> feedback("crane", "react"), feedback("eerie", "crepe"), feedback("speed", "speed")
    ('YYG-Y', 'Y-Y-G', 'GGGGG')
    """
    pattern = [ABSENT] * len(guess)
    left = Counter(s for g, s in zip(guess, secret) if g != s)
    for i, (g, s) in enumerate(zip(guess, secret)):
        if g == s:
            pattern[i] = CORRECT
        elif left[g] > 0:
            pattern[i] = PRESENT
            left[g] -= 1
    return "".join(pattern)


def consistent(words: Iterable[str], history: Sequence[tuple[str, str]]) -> list[str]:
    """The words that would have produced every ``(guess, pattern)`` seen so far."""
    return [w for w in words if all(feedback(guess, w) == pattern for guess, pattern in history)]


class WordleGame:
    """The state of one game: the secret, the guesses so far and what they revealed."""

    def __init__(self, secret: str, max_guesses: int = 6):
        self.secret = secret
        self.max_guesses = max_guesses
        self.history: list[tuple[str, str]] = []
        self.greens: set[int] = set()
        self.letters: set[str] = set()  # letters known to be in the secret
        self.absent: set[str] = set()

    @property
    def won(self) -> bool:
        return bool(self.history) and self.history[-1][0] == self.secret

    @property
    def over(self) -> bool:
        return self.won or len(self.history) >= self.max_guesses

    def play(self, guess: str) -> dict:
        """Play a (valid) guess; what it revealed for the first time, JSON-serialisable."""
        repeat = any(guess == earlier for earlier, _ in self.history)
        pattern = feedback(guess, self.secret)
        self.history.append((guess, pattern))
        new_greens = [i for i, mark in enumerate(pattern) if mark == CORRECT and i not in self.greens]
        new_letters = sorted({c for c, mark in zip(guess, pattern) if mark != ABSENT} - self.letters)
        self.greens.update(new_greens)
        self.letters.update(new_letters)
        self.absent |= {c for c, mark in zip(guess, pattern) if mark == ABSENT} - self.letters
        return {"word": guess, "pattern": pattern, "new_greens": len(new_greens), "new_letters": len(new_letters),
                "repeat": repeat, "won": self.won, "over": self.over}

    def summary(self) -> str:
        """What the feedback so far says, in one line."""
        if self.won:
            return f"Solved in {len(self.history)} guesses."
        left = self.max_guesses - len(self.history)
        if left <= 0:
            return f"No guesses left. The word was {self.secret!r}."
        known = " ".join(self.secret[i] if i in self.greens else "_" for i in range(len(self.secret)))
        present = " ".join(sorted(self.letters)) or "none yet"
        absent = " ".join(sorted(self.absent)) or "none yet"
        return f"Known: {known}; in the word: {present}; not in the word: {absent}. {left} guesses left."
