"""The retrieval contract shared by every backend: passages in, ranked hits out, in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of text: a paragraph with the title of the page it comes from."""

    id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        """Search-R1's single-field form: the title on the first line, then the text."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def passage_from_contents(doc_id: str, contents: str) -> Passage:
    """The inverse of ``Passage.contents`` for Search-R1 documents: the first line is the title.

    Search-R1's Wikipedia corpus quotes titles (``'"Paris"\nParis is ...'``); the quotes are dropped.
    A single-line document has no title.
    """
    title, sep, text = contents.partition("\n")
    if not sep:
        return Passage(doc_id, "", contents.strip())
    title = title.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    return Passage(doc_id, title, text.strip())


@dataclass(frozen=True)
class Hit:
    """A passage returned for a query, with the backend's score (higher is better)."""

    passage: Passage
    score: float


@runtime_checkable
class Retriever(Protocol):
    """Anything that answers a batch of queries with the top-``k`` passages of each.

    ``search(["q1", "q2"], k=3)`` returns ``[[Hit, Hit, Hit], [Hit, Hit, Hit]]``: one ranked list
    per query, best first, at most ``k`` long (shorter when the corpus is smaller). Backends may
    raise on infrastructure failure (a server down); the search *tool* turns that into an error
    result, so the environment never sees an exception.
    """

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]: ...
