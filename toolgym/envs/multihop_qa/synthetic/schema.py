"""What a synthetic world is made of: the entity kinds, the relations between them, and the
entity record the world builds, relates, names and renders."""

from __future__ import annotations

from typing import Any

from toolgym.envs.retrieval.base import Passage

KINDS = ("country", "city", "university", "org", "person", "film", "book")
# Kinds whose entities start questions: each gets a split, and the entities it links to along a
# question chain (director, author, founder, employer) are drawn from the same split.
ANCHOR_KINDS = ("person", "org", "film", "book")

# relation -> the kind it points to, or None for a year attribute.
RELATIONS: dict[str, dict[str, str | None]] = {
    "country": {"independence": None},
    "city": {"country": "country", "founded": None},
    "university": {"city": "city", "founded": None},
    "org": {"founder": "person", "hq": "city", "founded": None},
    "person": {"birth_year": None, "birthplace": "city", "university": "university", "employer": "org"},
    "film": {"director": "person", "year": None},
    "book": {"author": "person", "year": None},
}


class Entity:
    """One person, city, film...: its name (and the recipe its distractor twins vary), its
    relations and years (``attrs``), its split, its passage's sentences; ``twin_of`` is the real
    entity a distractor imitates."""

    __slots__ = ("kind", "idx", "name", "recipe", "attrs", "split", "twin_of", "role", "sentences", "keys",
                 "passage")

    def __init__(self, kind, idx, name, recipe):
        self.kind, self.idx, self.name, self.recipe = kind, idx, name, recipe
        self.attrs: dict[str, Any] = {}
        self.split: str | None = None
        self.twin_of: Entity | None = None
        self.role = ""
        self.sentences: list[str] = []
        self.keys: list[str] = []
        self.passage: Passage | None = None
