"""The synthetic world itself: its configuration, the entities related, named and rendered from
one seed, the questions asked over them, and the necessity check that keeps a question only when
its text alone cannot retrieve the answer."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolgym.envs.errors import did_you_mean, unknown_name_error
from toolgym.envs.multihop_qa.example import QAExample
from toolgym.envs.multihop_qa.metrics import normalize_answer
from toolgym.envs.multihop_qa.synthetic.names import Namer, make_name, reserved_words, twin_name
from toolgym.envs.multihop_qa.synthetic.passages import FACT_SENTENCE, WORDING, render
from toolgym.envs.multihop_qa.synthetic.schema import ANCHOR_KINDS, KINDS, RELATIONS, Entity
from toolgym.envs.multihop_qa.synthetic.templates import QUESTION_TYPES, TEMPLATES, Template
from toolgym.envs.retrieval.base import Passage
from toolgym.envs.retrieval.bm25 import BM25Retriever

SPLITS = ("train", "validation", "test")
# Questions' example contexts have this many passages (HotpotQA's distractor setting has 10).
CONTEXT_SIZE = 10


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a synthetic world; equal configs give identical worlds."""

    # Seed of every random choice (names, relations, wording, questions, splits).
    seed: int = 0
    # Corpus size: the number of people; the other counts derive from it (cities n/8, countries
    # n/40, universities n/20, companies n/10, films n/2, books n/3). Passages ~ 2.1 n (1 + distractors).
    n_people: int = 400
    # (min, max) supporting passages per question, inclusive; templates outside are not asked.
    hops: tuple[int, int] = (2, 4)
    # Question types to ask: "bridge" and/or "comparison".
    question_types: tuple[str, ...] = ("bridge", "comparison")
    # Restrict to these named templates (see TEMPLATES), e.g. ("film_director_birthplace",); None = all.
    templates: tuple[str, ...] | None = None
    # Distractor passages per real entity: same type, a similar name, their own facts, never gold
    # (0.5 -> every other entity has one twin; 2.0 -> two each).
    distractors: float = 1.0
    # BM25 top-k of the necessity check: a question whose text alone retrieves its answer is dropped.
    leak_check_k: int = 5
    # Fractions of anchors (first entities) for train / validation / test; must sum to 1.
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    # One-word names for people and films ("Ladoli", not "Nipi Lekranouth"): shorter copies, which
    # the CPU demo's tiny model learns to make from unseen passages; other kinds keep their forms.
    short_names: bool = False
    # Passages state only their entity's name line and the relations the active templates read
    # (film_director_birthplace: the director, the birthplace), not the other facts. Fewer competing
    # names in a passage: what the CPU demo's tiny model can learn to pick from in minutes.
    facts_only: bool = False

    def __post_init__(self):
        # Accept lists (YAML, gym.make kwargs) but store tuples so the config stays hashable.
        for name in ("hops", "question_types", "splits", "templates"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(value))
            elif isinstance(value, str) and name in ("question_types", "templates"):
                object.__setattr__(self, name, (value,))
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}.")
        if not isinstance(self.n_people, (int, np.integer)) or self.n_people < 40:
            raise ValueError(
                f"n_people must be an int >= 40 (smaller worlds leave splits without questions), got "
                f"{self.n_people!r}. Use n_people=40 or more."
            )
        if (len(self.hops) != 2 or not all(isinstance(h, (int, np.integer)) for h in self.hops)
                or not 1 <= self.hops[0] <= self.hops[1]):
            raise ValueError(f"hops must be (min, max) ints with 1 <= min <= max, got {self.hops!r}. Try hops=(2, 4).")
        if not self.question_types:
            raise ValueError("question_types is empty: give at least one of 'bridge', 'comparison'.")
        for qtype in self.question_types:
            if qtype not in QUESTION_TYPES:
                raise unknown_name_error("question type", qtype, QUESTION_TYPES)
        for name in self.templates or ():
            if name not in TEMPLATES:
                raise unknown_name_error("question template", name, TEMPLATES)
        if not self.active_templates():
            available = ", ".join(f"{t.name} ({t.type}, {t.hops} hops)" for t in TEMPLATES.values())
            raise ValueError(
                f"No question template matches hops={self.hops}, question_types={self.question_types}, "
                f"templates={self.templates}. Widen one of them; templates: {available}."
            )
        for name in ("short_names", "facts_only"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}.")
        if not isinstance(self.distractors, (int, float)) or not 0 <= self.distractors <= 10:
            raise ValueError(f"distractors must be a number in [0, 10] (twins per entity), got {self.distractors!r}.")
        if not isinstance(self.leak_check_k, (int, np.integer)) or self.leak_check_k < 1:
            raise ValueError(f"leak_check_k must be an int >= 1, got {self.leak_check_k!r}. The default is 5.")
        if (len(self.splits) != 3 or any(not isinstance(s, (int, float)) or s < 0 for s in self.splits)
                or not math.isclose(sum(self.splits), 1.0, abs_tol=1e-6)):
            raise ValueError(
                f"splits must be three non-negative fractions (train, validation, test) summing to 1, "
                f"got {self.splits!r}. Try splits=(0.8, 0.1, 0.1)."
            )

    def active_templates(self) -> tuple[Template, ...]:
        """The templates this config asks, in TEMPLATES order."""
        lo, hi = self.hops
        return tuple(
            t for t in TEMPLATES.values()
            if t.type in self.question_types and lo <= t.hops <= hi
            and (self.templates is None or t.name in self.templates)
        )

    def asked_sentences(self) -> frozenset[str]:
        """The sentence keys (``passages.FACT_SENTENCE``) stating a relation some active template reads."""
        keys = set()
        for t in self.active_templates():
            for kind, path in ((t.anchor, t.path), (t.other, t.other_path)):
                for relation in path:
                    keys.add(FACT_SENTENCE[(kind, relation)])
                    kind = RELATIONS[kind][relation]
        return frozenset(keys)

    def counts(self) -> dict[str, int]:
        """Real entities of each kind (distractors come on top)."""
        n = int(self.n_people)
        return {"country": max(4, n // 40), "city": max(8, n // 8), "university": max(4, n // 20),
                "org": max(6, n // 10), "person": n, "film": max(8, n // 2), "book": max(6, n // 3)}


def _stable_unit(*parts: Any) -> float:
    """A uniform number in [0, 1) from a hash of ``parts``: independent of generation order."""
    digest = hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _stable_rng(*parts: Any) -> np.random.Generator:
    digest = hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def _split_of(seed: int, name: str, fractions: tuple[float, float, float]) -> str:
    u, edge = _stable_unit(seed, "split", name), 0.0
    for split, fraction in zip(SPLITS, fractions):
        edge += fraction
        if u < edge:
            return split
    return next(s for s, f in zip(reversed(SPLITS), reversed(fractions)) if f > 0)


class SyntheticWorld:
    """A generated world: ``passages`` (the corpus) and ``questions(split)``.

    Build it with ``build_world`` (cached per config). Passage titles are the entity names and are
    unique; the ids (``s<seed>-<n>``) do not tell real entities from distractors.
    """

    def __init__(self, config: WorldConfig):
        self.config = config
        seeds = np.random.SeedSequence(config.seed).spawn(4)
        names_rng, relations_rng, twins_rng, text_rng = (np.random.default_rng(s) for s in seeds)
        self._taken = reserved_words([*(t.text for t in TEMPLATES.values()), *WORDING])
        namer = Namer(names_rng, self._taken)
        counts = config.counts()
        self.entities: dict[str, list[Entity]] = {
            kind: [Entity(kind, i, *make_name(namer, kind, config.short_names)) for i in range(counts[kind])]
            for kind in KINDS
        }
        for kind in ANCHOR_KINDS:
            for e in self.entities[kind]:
                e.split = _split_of(config.seed, e.name, config.splits)
        self._relate(relations_rng)
        namer.reseed(twins_rng)  # twins never shift the real world's names or facts
        self.distractors = self._twins(namer, twins_rng)
        everything = [e for kind in KINDS for e in self.entities[kind]] + self.distractors
        only = config.asked_sentences() if config.facts_only else None
        for e in everything:
            render(e, text_rng, only)
        order = text_rng.permutation(len(everything))
        self.passages: list[Passage] = []
        for n, i in enumerate(order):
            e = everything[i]
            e.passage = Passage(f"s{config.seed}-{n}", e.name, " ".join(e.sentences))
            self.passages.append(e.passage)
        self._by_title = {p.title: p for p in self.passages}
        self._entity_of = {e.name: e for e in everything}
        self._retriever = None
        candidates = self._candidates()
        self.rejected = self._necessity_filter(candidates)
        self._questions = {split: [] for split in SPLITS}
        for example, split in candidates:
            self._questions[split].append(example)
        for split, examples in self._questions.items():
            examples.sort(key=lambda ex: _stable_unit(config.seed, "order", ex.id))
            if not examples and config.splits[SPLITS.index(split)] > 0:
                raise ValueError(
                    f"The {split!r} split of this world has no questions (n_people={config.n_people}, "
                    f"templates={[t.name for t in config.active_templates()]}). Increase n_people or "
                    f"that split's fraction in splits={config.splits}."
                )

    # -- relations ------------------------------------------------------------------------
    def _relate(self, rng: np.random.Generator) -> None:
        E = self.entities
        countries, cities, universities = E["country"], E["city"], E["university"]
        for i, city in enumerate(cities):  # every country gets at least one city
            city.attrs["country"] = countries[i] if i < len(countries) else countries[rng.integers(len(countries))]
            city.attrs["founded"] = int(rng.integers(800, 1850))
        for country in countries:
            country.attrs["independence"] = int(rng.integers(1700, 1995))
        for uni in universities:
            uni.attrs.update(city=cities[rng.integers(len(cities))], founded=int(rng.integers(1200, 1960)))
        # Roles decide who directs, writes and founds; relations along question chains stay in a split.
        roles = rng.choice(["director", "writer", "founder", "other"], size=len(E["person"]), p=[0.25, 0.2, 0.1, 0.45])
        pools: dict[tuple[str, str | None], list[Entity]] = {}
        for person, role in zip(E["person"], roles):
            person.role = str(role)
            pools.setdefault((person.role, person.split), []).append(person)
            pools.setdefault(("any", person.split), []).append(person)
        orgs_by_split: dict[str | None, list[Entity]] = {}
        for org in E["org"]:
            orgs_by_split.setdefault(org.split, []).append(org)

        def person_for(role: str, split: str | None) -> Entity:
            pool = pools.get((role, split)) or pools.get(("any", split)) or E["person"]
            return pool[rng.integers(len(pool))]

        for person in E["person"]:
            orgs = orgs_by_split.get(person.split) or E["org"]
            person.attrs.update(
                birth_year=int(rng.integers(1900, 1996)), birthplace=cities[rng.integers(len(cities))],
                university=universities[rng.integers(len(universities))], employer=orgs[rng.integers(len(orgs))],
            )
        for org in E["org"]:
            founder = person_for("founder", org.split)
            org.attrs.update(founder=founder, founded=min(2020, founder.attrs["birth_year"] + int(rng.integers(22, 60))),
                             hq=cities[rng.integers(len(cities))])
        for kind, rel, role in (("film", "director", "director"), ("book", "author", "writer")):
            for work in E[kind]:
                creator = person_for(role, work.split)
                work.attrs[rel] = creator
                work.attrs["year"] = min(2023, creator.attrs["birth_year"] + int(rng.integers(22, 65)))
        for film in E["film"]:
            if rng.random() < 0.5:
                film.attrs["shot_in"] = cities[rng.integers(len(cities))]
        for book in E["book"]:
            if rng.random() < 0.4:
                book.attrs["publisher"] = E["org"][rng.integers(len(E["org"]))]
            if rng.random() < 0.4:
                book.attrs["setting"] = cities[rng.integers(len(cities))]

    def _twins(self, namer: Namer, rng: np.random.Generator) -> list[Entity]:
        """Distractors: same kind, similar name, own facts over real entities; nothing real points to them."""
        d = float(self.config.distractors)
        whole, frac = int(d), d - int(d)
        twins: list[Entity] = []
        for kind in KINDS:
            for e in self.entities[kind]:
                for _ in range(whole + int(rng.random() < frac)):
                    twin = Entity(kind, len(twins), twin_name(namer, e.recipe), e.recipe)
                    twin.twin_of, twin.role = e, e.role
                    twins.append(twin)
        E = self.entities
        people = E["person"] + [t for t in twins if t.kind == "person"]

        def real(kind: str) -> Entity:
            return E[kind][rng.integers(len(E[kind]))]

        for t in twins:
            if t.kind == "country":
                t.attrs["independence"] = int(rng.integers(1700, 1995))
            elif t.kind == "city":
                t.attrs.update(country=real("country"), founded=int(rng.integers(800, 1850)))
            elif t.kind == "university":
                t.attrs.update(city=real("city"), founded=int(rng.integers(1200, 1960)))
            elif t.kind == "person":
                t.attrs.update(birth_year=int(rng.integers(1900, 1996)), birthplace=real("city"),
                               university=real("university"), employer=real("org"))
        for t in twins:  # after all twin people have birth years
            if t.kind == "org":
                founder = people[rng.integers(len(people))]
                t.attrs.update(founder=founder, founded=min(2020, founder.attrs["birth_year"] + int(rng.integers(22, 60))),
                               hq=real("city"))
            elif t.kind in ("film", "book"):
                creator = people[rng.integers(len(people))]
                t.attrs["director" if t.kind == "film" else "author"] = creator
                t.attrs["year"] = min(2023, creator.attrs["birth_year"] + int(rng.integers(22, 65)))
                if t.kind == "film" and rng.random() < 0.5:
                    t.attrs["shot_in"] = real("city")
        return twins

    # -- questions --------------------------------------------------------------------------
    @staticmethod
    def _walk(start: Entity, path: tuple[str, ...]) -> tuple[list[tuple[Entity, str]], Any]:
        """The (entity, relation read) hops of ``path`` from ``start`` and the value reached."""
        hops, current = [], start
        for rel in path:
            hops.append((current, rel))
            current = current.attrs[rel]
        return hops, current

    def _candidates(self) -> list[tuple[QAExample, str]]:
        seed = self.config.seed
        out: list[tuple[QAExample, str]] = []
        for template in self.config.active_templates():
            pool_of: dict[str | None, list[Entity]] = {}
            if template.other:
                for e in self.entities[template.other]:
                    pool_of.setdefault(e.split, []).append(e)
            for anchor in self.entities[template.anchor]:
                rng = _stable_rng(seed, template.name, anchor.name)
                hops, value = self._walk(anchor, template.path)
                if template.type == "bridge":
                    answer = value.name if isinstance(value, Entity) else str(value)
                    question = template.text.format(a=anchor.name)
                else:
                    pool = pool_of.get(anchor.split, [])
                    other = None
                    for _ in range(20):  # a second entity of the same split, no shared hop, no tie
                        cand = pool[rng.integers(len(pool))] if pool else None
                        if cand is None:
                            break
                        cand_hops, cand_value = self._walk(cand, template.other_path)
                        seen = {id(h[0]) for h in hops}
                        if cand_value != value and not any(id(h[0]) in seen for h in cand_hops):
                            other = cand
                            break
                    if other is None:
                        continue
                    first = value < cand_value
                    if template.answer_of == "anchor":
                        answer = (anchor if first else other).name
                    else:
                        answer = (hops[-1][0] if first else cand_hops[-1][0]).name
                    hops = hops + cand_hops
                    question = template.text.format(a=anchor.name, b=other.name)
                entities = [h[0] for h in hops]
                if len({id(e) for e in entities}) < len(entities):
                    continue  # a chain that revisits an entity (a founder employed by their own company)
                example = QAExample(
                    id=f"syn-{seed}-{template.name}-{anchor.idx}",
                    question=question,
                    answer=answer,
                    supporting_titles=tuple(e.name for e in entities),
                    context=self._context(entities, rng),
                    type=template.type,
                    hops=len(entities),
                    supporting_facts=tuple(
                        (e.name, e.keys.index(FACT_SENTENCE[(e.kind, rel)])) for e, rel in hops
                    ),
                    meta={"template": template.name, "anchor": anchor.name},
                )
                out.append((example, anchor.split))
        return out

    def _context(self, gold: list[Entity], rng: np.random.Generator) -> tuple[Passage, ...]:
        """Gold passages, their entities' twins, then random passages up to CONTEXT_SIZE, shuffled."""
        chosen = {e.name: e.passage for e in gold}
        for e in gold:
            for twin in self._twins_of(e):
                chosen.setdefault(twin.name, twin.passage)
        size = min(max(CONTEXT_SIZE, len(gold)), len(self.passages))
        while len(chosen) < size:
            for i in rng.integers(len(self.passages), size=2 * CONTEXT_SIZE):
                if len(chosen) < size:
                    chosen.setdefault(self.passages[i].title, self.passages[i])
        passages = list(chosen.values())
        return tuple(passages[i] for i in rng.permutation(len(passages)))

    def _twins_of(self, e: Entity) -> list[Entity]:
        if not hasattr(self, "_twin_index"):
            self._twin_index: dict[int, list[Entity]] = {}
            for t in self.distractors:
                self._twin_index.setdefault(id(t.twin_of), []).append(t)
        return self._twin_index.get(id(e), [])

    def _necessity_filter(self, candidates: list[tuple[QAExample, str]]) -> list[QAExample]:
        """Drop (in place) questions whose text alone retrieves the answer; return the dropped ones."""
        if not candidates:
            return []
        k = self.config.leak_check_k
        hits = self.retriever.search([ex.question for ex, _ in candidates], k=k)
        normalised: dict[str, str] = {}
        kept, dropped = [], []
        for (example, split), top in zip(candidates, hits):
            if leaks(example, [h.passage for h in top], normalised):
                dropped.append(example)
            else:
                kept.append((example, split))
        candidates[:] = kept
        return dropped

    # -- public helpers ---------------------------------------------------------------------
    @property
    def retriever(self):
        """The BM25 index over ``passages`` the necessity check used (built once, disk-cached)."""
        if self._retriever is None:
            self._retriever = BM25Retriever(self.passages, cache=True)
        return self._retriever

    def questions(self, split: str) -> list[QAExample]:
        """The validated questions of ``split`` ("train", "validation", "test"), in a fixed order."""
        if split not in self._questions:
            raise unknown_name_error("split", split, SPLITS)
        return list(self._questions[split])

    def passage(self, title: str) -> Passage:
        """The passage whose title is ``title`` (an entity name)."""
        try:
            return self._by_title[title]
        except KeyError:
            raise KeyError(f"No passage titled {title!r} in this world.{did_you_mean(title, self._by_title)}") from None

    def is_distractor(self, title: str) -> bool:
        """Whether the passage titled ``title`` is a distractor twin (never part of a gold chain)."""
        return self._entity_of[self.passage(title).title].twin_of is not None

    def new_entity_names(self, n: int, kind: str = "person", seed: int = 0) -> list[str]:
        """``n`` fresh names of ``kind``, in this world's style but absent from it (for warm-up data
        on unseen names). Deterministic in (world seed, ``seed``); does not change the world."""
        if kind not in KINDS:
            raise unknown_name_error("entity kind", kind, KINDS)
        namer = Namer(_stable_rng(self.config.seed, "fresh-names", seed), set(self._taken))
        return [make_name(namer, kind, self.config.short_names)[0] for _ in range(n)]

    def stats(self) -> dict[str, int]:
        """Sizes: passages, real entities, distractors, questions per split, rejected by the check."""
        return {"passages": len(self.passages), "entities": len(self.passages) - len(self.distractors),
                "distractors": len(self.distractors), "rejected": len(self.rejected),
                **{split: len(qs) for split, qs in self._questions.items()}}

    def __repr__(self) -> str:
        return f"SyntheticWorld({self.config}, {self.stats()})"


def leaks(example: QAExample, retrieved: list[Passage], cache: dict[str, str] | None = None) -> bool:
    """The necessity rule: does the question text's own top-k (``retrieved``) already answer it?

    True when every gold passage is retrieved, or (bridge) a retrieved passage contains the
    normalised answer as whole words.
    """
    titles = {p.title for p in retrieved}
    if all(t in titles for t in example.supporting_titles):
        return True
    if example.type != "bridge":
        return False
    cache = {} if cache is None else cache
    answer = f" {normalize_answer(example.answer)} "
    for p in retrieved:
        if p.id not in cache:
            cache[p.id] = f" {normalize_answer(p.contents)} "
        if answer in cache[p.id]:
            return True
    return False


@functools.lru_cache(maxsize=8)
def _build(config: WorldConfig) -> SyntheticWorld:
    return SyntheticWorld(config)


def build_world(config: WorldConfig | None = None, **overrides: Any) -> SyntheticWorld:
    """The world for ``config`` with ``overrides`` applied (``build_world(n_people=2000)``).

    Worlds are cached per config: envs can call this at every construction. Do not mutate the
    returned world.
    """
    fields = {f.name for f in dataclasses.fields(WorldConfig)}
    for name in overrides:
        if name not in fields:
            raise unknown_name_error("WorldConfig field", name, fields)
    config = dataclasses.replace(config or WorldConfig(), **overrides)
    return _build(config)
