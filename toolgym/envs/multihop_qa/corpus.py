"""What the search tool searches over, and which of its passages count as gold evidence.

Corpus modes (``MultiHopQAEnv(corpus=...)``):

* ``example_corpus(example)``: the example's own paragraphs (the distractor setting: 10 for
  HotpotQA and 2Wiki, 20 for MuSiQue);
* ``pooled_corpus(examples)``: every paragraph of the loaded split, de-duplicated by
  (title, text): retrieval over thousands of passages;
* ``load_corpus_jsonl(path)``: an external corpus, rows ``{id, title, text}`` or Search-R1's
  ``{id, contents}`` (title on the first line of ``contents``, quoted in Search-R1's wiki dump);
  the retrieval layer's reader (``toolgym.envs.retrieval.corpus``), which the servers use too.

``is_supporting(passage, example)`` decides whether a retrieved passage is gold evidence, for the
evidence process reward and for retrieval recall.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from toolgym.envs.multihop_qa.example import QAExample
from toolgym.envs.retrieval.base import Passage
from toolgym.envs.retrieval.corpus import load_corpus_jsonl

__all__ = [
    "context_matcher",
    "example_corpus",
    "is_supporting",
    "load_corpus_jsonl",
    "normalize_title",
    "pooled_corpus",
    "pooled_id",
    "recall_at_k",
    "supporting_matcher",
    "supporting_passages",
]

MatchMode = Literal["auto", "title", "exact"]


def example_corpus(example: QAExample) -> list[Passage]:
    """The example's own paragraphs, gold and distractors, in the dataset's order."""
    if not example.context:
        raise ValueError(
            f"example {example.id!r} has no context paragraphs, so corpus='example' has nothing to search; "
            "use an external corpus (a JSONL file or a Lucene index) for this data."
        )
    return list(example.context)


def _passage_key(title: str, text: str) -> tuple[str, str]:
    return " ".join(title.split()), " ".join(text.split())


def pooled_id(title: str, text: str) -> str:
    """A content id, so a passage keeps its id whatever subset or order of examples pooled it."""
    title, text = _passage_key(title, text)
    return "p" + hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:16]


def pooled_corpus(examples: Iterable[QAExample]) -> list[Passage]:
    """Every paragraph of ``examples``, once per distinct (title, text), in first-seen order.

    Ids are content hashes (``"p" + 16 hex digits``) of the white-space-normalised title and
    text: stable across runs, subsets and orderings, and unique in the pool.
    """
    pool: dict[tuple[str, str], Passage] = {}
    for example in examples:
        for p in example.context:
            key = _passage_key(p.title, p.text)
            if key not in pool:
                pool[key] = Passage(id=pooled_id(p.title, p.text), title=p.title, text=p.text)
    if not pool:
        raise ValueError("pooled_corpus got no paragraphs: the examples have no context (or the list is empty).")
    return list(pool.values())


@functools.lru_cache(maxsize=1 << 16)
def normalize_title(title: str) -> str:
    """Unicode-normalised, case-folded, underscores as spaces, single-spaced: for matching titles."""
    title = unicodedata.normalize("NFKC", title).replace("_", " ").casefold()
    return " ".join(title.split())


def supporting_passages(example: QAExample) -> tuple[Passage, ...]:
    """The gold paragraphs of the example's own context, in hop order (MuSiQue: one per hop)."""
    if example.supporting_idxs:
        by_id = {p.id: p for p in example.context}
        return tuple(by_id[f"{example.id}-{i}"] for i in example.supporting_idxs if f"{example.id}-{i}" in by_id)
    gold = {normalize_title(t) for t in example.supporting_titles}
    return tuple(p for p in example.context if normalize_title(p.title) in gold)


def _resolve(match: str, example: QAExample) -> str:
    if match not in ("auto", "title", "exact"):
        raise ValueError(f"match must be 'auto', 'title' or 'exact', got {match!r}.")
    if match == "auto":
        return "exact" if example.supporting_idxs else "title"
    return match


@dataclass(frozen=True)
class SupportingMatcher:
    """``is_supporting`` for one example with its gold keys computed once (and picklable, so an
    env holding one can be copied)."""

    by_title: bool
    keys: frozenset

    def key(self, passage: Passage):
        """What identifies a piece of evidence: its normalised title, or (title, text)."""
        return normalize_title(passage.title) if self.by_title else _gold_key(passage)

    def __call__(self, passage: Passage) -> bool:
        return self.key(passage) in self.keys


def supporting_matcher(example: QAExample, *, match: MatchMode = "auto") -> SupportingMatcher:
    """``is_supporting`` with the gold keys computed once: build one per episode, call it per hit."""
    if _resolve(match, example) == "title":
        return SupportingMatcher(True, frozenset(normalize_title(t) for t in example.supporting_titles))
    return SupportingMatcher(False, frozenset(_gold_key(p) for p in supporting_passages(example)))


@dataclass(frozen=True)
class ContextMatcher:
    """Which of an example's own paragraphs a retrieved passage is (indices into ``context``)."""

    by_title: bool
    index: dict

    def __call__(self, passage: Passage) -> tuple[int, ...]:
        return self.index.get(normalize_title(passage.title) if self.by_title else _gold_key(passage), ())


def context_matcher(example: QAExample, *, match: MatchMode = "auto") -> ContextMatcher:
    """Map retrieved passages to the example's own paragraphs, by the same rule as
    ``supporting_matcher``: (title, text) when exact, every paragraph of the page by title."""
    by_title = _resolve(match, example) == "title"
    index: dict = {}
    for i, p in enumerate(example.context):
        key = normalize_title(p.title) if by_title else _gold_key(p)
        index[key] = (*index.get(key, ()), i)
    return ContextMatcher(by_title, index)


def _gold_key(p: Passage) -> tuple[str, str]:
    return _passage_key(normalize_title(p.title), p.text)


def is_supporting(passage: Passage, example: QAExample, *, match: MatchMode = "auto") -> bool:
    """True when ``passage`` is gold evidence for ``example``.

    ``match="title"`` compares normalised titles with ``example.supporting_titles`` (HotpotQA and
    2Wiki mark evidence by page title). ``match="exact"`` compares (title, text), white space
    normalised, with the gold paragraphs of the example's context. ``"auto"`` (the default) is
    exact for MuSiQue (its examples carry ``supporting_idxs``: a page can give a gold and a
    distractor paragraph, so the title is not enough) and title otherwise. With an external
    corpus whose text differs from the dataset's paragraphs, pass ``match="title"``.
    For many passages of one example, build ``supporting_matcher(example)`` once instead.
    """
    return supporting_matcher(example, match=match)(passage)


def recall_at_k(hits: Sequence[Passage], example: QAExample, *, match: MatchMode = "auto") -> float:
    """Fraction of the example's gold evidence among ``hits``: gold titles (HotpotQA, 2Wiki) or
    gold paragraphs (MuSiQue) under the same ``match`` rule as ``is_supporting``."""
    if _resolve(match, example) == "title":
        gold = {normalize_title(t) for t in example.supporting_titles}
        found = {normalize_title(p.title) for p in hits}
    else:
        gold = {_gold_key(p) for p in supporting_passages(example)}
        found = {_gold_key(p) for p in hits}
    return len(gold & found) / len(gold) if gold else 0.0
