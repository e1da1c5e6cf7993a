"""An invented world for offline multi-hop QA: entities, relations, passages and 2-4 hop questions.

``build_world`` generates people, cities, countries, universities, companies, films and books
with invented, pronounceable names and the relations between them, renders every entity as a
short encyclopedia-style passage, adds distractor entities with similar names, and asks
HotpotQA-style questions of two types:

* **bridge**: follow a chain of relations ("In which country was the director of FILM born?":
  film -> director -> birth city -> country, 3 supporting passages);
* **comparison**: compare a fact that sits behind a bridge hop ("Whose director was born earlier,
  FILM A or FILM B?", 4 supporting passages).

A passage states only its own entity's forward relations (a person's passage never lists the
films they directed), so the question text alone cannot retrieve the later hops. Every question
is checked at build time: it is dropped when BM25 over the question text already returns all of
its gold passages, or (bridge) any passage containing the answer. Everything is deterministic
from ``WorldConfig.seed``; train/validation/test are split by the question's first entity, so
test questions start from entities no training question mentions as its anchor.

>>> world = build_world(n_people=200, seed=3, templates=("film_director_birthplace",))
>>> q = world.questions("train")[0]
>>> q.type, q.hops, q.meta["template"]
('bridge', 2, 'film_director_birthplace')
>>> q.question == f"Where was the director of {q.supporting_titles[0]} born?"
True
>>> q.answer in world.passage(q.supporting_titles[1]).text
True
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolgym.envs.errors import did_you_mean, unknown_name_error
from toolgym.envs.multihop_qa.example import QAExample
from toolgym.envs.multihop_qa.metrics import normalize_answer
from toolgym.envs.retrieval.base import Passage

SPLITS = ("train", "validation", "test")
QUESTION_TYPES = ("bridge", "comparison")
KINDS = ("country", "city", "university", "org", "person", "film", "book")
# Kinds whose entities start questions: each gets a split, and the entities it links to along a
# question chain (director, author, founder, employer) are drawn from the same split.
ANCHOR_KINDS = ("person", "org", "film", "book")
# Questions' example contexts have this many passages (HotpotQA's distractor setting has 10).
CONTEXT_SIZE = 10

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


# -- question templates -----------------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    """A question pattern. Bridge: follow ``path`` from the anchor; the last relation read gives
    the answer. Comparison: follow ``path`` from the anchor and ``other_path`` from a second
    entity of kind ``other``; the earlier year wins, and the answer names the anchors
    (``answer_of="anchor"``) or the entities holding the compared years (``"end"``)."""

    name: str
    type: str
    anchor: str
    path: tuple[str, ...]
    text: str
    other: str | None = None
    other_path: tuple[str, ...] = ()
    answer_of: str = "anchor"

    @property
    def hops(self) -> int:
        """Supporting passages: one per relation read."""
        return len(self.path) + len(self.other_path)


def _b(name, anchor, path, text):
    return Template(name, "bridge", anchor, tuple(path), text)


def _c(name, anchor, path, other, other_path, answer_of, text):
    return Template(name, "comparison", anchor, tuple(path), text, other, tuple(other_path), answer_of)


TEMPLATES: dict[str, Template] = {t.name: t for t in (
    # 2 hops
    _b("film_director_birthplace", "film", ("director", "birthplace"), "Where was the director of {a} born?"),
    _b("film_director_birth_year", "film", ("director", "birth_year"), "In what year was the director of {a} born?"),
    _b("film_director_university", "film", ("director", "university"),
       "Which university did the director of {a} attend?"),
    _b("book_author_birthplace", "book", ("author", "birthplace"), "Where was the author of {a} born?"),
    _b("book_author_employer", "book", ("author", "employer"), "Which company does the author of {a} work for?"),
    _b("org_founder_birthplace", "org", ("founder", "birthplace"), "Where was the founder of {a} born?"),
    _b("person_birth_country", "person", ("birthplace", "country"), "In which country was {a} born?"),
    _b("org_hq_country", "org", ("hq", "country"), "In which country is {a} headquartered?"),
    # 3 hops
    _b("film_director_birth_country", "film", ("director", "birthplace", "country"),
       "In which country was the director of {a} born?"),
    _b("book_author_birth_country", "book", ("author", "birthplace", "country"),
       "In which country was the author of {a} born?"),
    _b("film_director_employer_hq", "film", ("director", "employer", "hq"),
       "In which city is the employer of the director of {a} headquartered?"),
    _b("org_founder_university_city", "org", ("founder", "university", "city"),
       "In which city is the university attended by the founder of {a}?"),
    _b("person_employer_hq_country", "person", ("employer", "hq", "country"),
       "In which country is the company that {a} works for headquartered?"),
    # 4 hops
    _b("film_director_employer_hq_country", "film", ("director", "employer", "hq", "country"),
       "In which country is the employer of the director of {a} headquartered?"),
    _b("book_author_university_country", "book", ("author", "university", "city", "country"),
       "In which country is the university attended by the author of {a}?"),
    _b("film_director_employer_founder_birthplace", "film", ("director", "employer", "founder", "birthplace"),
       "Where was the founder of the company that employs the director of {a} born?"),
    # comparisons: the compared years sit behind a bridge hop, so the question text cannot reach them
    _c("film_director_or_person_born_first", "film", ("director", "birth_year"), "person", ("birth_year",), "end",
       "Who was born earlier, the director of {a} or {b}?"),
    _c("film_directors_born_first", "film", ("director", "birth_year"), "film", ("director", "birth_year"),
       "anchor", "Whose director was born earlier, {a} or {b}?"),
    _c("book_authors_born_first", "book", ("author", "birth_year"), "book", ("author", "birth_year"), "anchor",
       "Which book's author was born earlier, {a} or {b}?"),
    _c("org_founders_born_first", "org", ("founder", "birth_year"), "org", ("founder", "birth_year"), "anchor",
       "Which company's founder was born earlier, {a} or {b}?"),
)}


# -- configuration ----------------------------------------------------------------------------
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
        """The sentence keys (``_SENTENCES``) stating a relation some active template reads."""
        keys = set()
        for t in self.active_templates():
            for kind, path in ((t.anchor, t.path), (t.other, t.other_path)):
                for relation in path:
                    keys.add(_FACT_SENTENCE[(kind, relation)])
                    kind = RELATIONS[kind][relation]
        return frozenset(keys)

    def counts(self) -> dict[str, int]:
        """Real entities of each kind (distractors come on top)."""
        n = int(self.n_people)
        return {"country": max(4, n // 40), "city": max(8, n // 8), "university": max(4, n // 20),
                "org": max(6, n // 10), "person": n, "film": max(8, n // 2), "book": max(6, n // 3)}


# -- names ------------------------------------------------------------------------------------
# Syllables are (onset, vowel); a word is 2-3 of them plus an optional final consonant, which
# keeps names pronounceable ("Velamor", "Tirasen") while leaving millions of distinct words.
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "h", "j",
           "b", "d", "k", "l", "m", "n", "r", "s", "t", "v", "br", "dr", "kr", "tr", "th", "st", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "a", "e", "ai", "ei", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "k", "m", "n", "r")
_PLAIN_VOWELS = "aeiou"
_DOUBLE_VOWEL = re.compile(r"([aeiou])\1")

# Fixed wording of passages and questions. Invented words must not stem to any of these, or a
# name search would also match every passage that uses the word.
_OCCUPATIONS = {
    "director": ("filmmaker", "film-maker"),
    "writer": ("novelist", "writer", "poet and novelist"),
    "founder": ("entrepreneur", "businessperson", "industrialist"),
    "other": ("engineer", "physician", "architect", "chemist", "journalist", "painter", "lawyer",
              "economist", "botanist", "diplomat"),
}
_INDUSTRIES = ("shipping", "software", "mining", "textile", "publishing", "brewing", "aerospace",
               "insurance", "pharmaceutical", "railway", "telecommunications", "glassware")
_ORG_SUFFIXES = ("Industries", "Group", "Holdings", "Systems", "Foundry", "Trading House", "Labs", "Partners")
_FILM_GENRES = ("drama", "comedy", "thriller", "documentary", "western", "musical", "science fiction",
                "horror", "animated", "war")
_BOOK_GENRES = ("historical", "crime", "romance", "fantasy", "satirical", "gothic", "adventure", "detective")
_FIELDS = ("medicine", "law", "engineering", "music", "agriculture", "mathematics", "philosophy", "economics")
_FEATURES = ("harbour", "cathedral", "markets", "textile mills", "old bridges", "vineyards", "river port",
             "festivals", "shipyards", "gardens")
_STATE_FORMS = ("sovereign state", "republic", "kingdom", "federation", "principality")
_SECTORS = ("farming", "fishing", "tourism", "mining", "manufacturing", "banking", "forestry", "trade")
_DIRECTIONS = ("north", "south", "east", "west", "centre")
_REVIEWS = ("mixed", "positive", "glowing", "poor", "lukewarm")
_BOOK_NAME_FORMS = ("The {w} {v}", "{w}", "The {w}", "{w} and {v}")
_FILM_NAME_FORMS = ("{w} {v}", "The {w}", "{w} of {v}", "{w}")
_UNIVERSITY_FORMS = ("Academy of {w}", "{w} College", "{w} Institute of Technology", "{w} Polytechnic")

_STEMMER = None


def _stem(word: str) -> str:
    global _STEMMER
    if _STEMMER is None:
        import Stemmer

        _STEMMER = Stemmer.Stemmer("english")
    return _STEMMER.stemWord(word.lower())


def _fixed_vocabulary() -> set[str]:
    pieces = [t.text for t in TEMPLATES.values()]
    for group in (_INDUSTRIES, _ORG_SUFFIXES, _FILM_GENRES, _BOOK_GENRES, _FIELDS, _FEATURES, _STATE_FORMS,
                  _SECTORS, _DIRECTIONS, _REVIEWS, _BOOK_NAME_FORMS, _FILM_NAME_FORMS, _UNIVERSITY_FORMS,
                  *_OCCUPATIONS.values(), *_SENTENCES.values()):
        for item in group:
            pieces.extend(item) if isinstance(item, tuple) else pieces.append(item)
    words = {w for piece in pieces for w in re.findall(r"[A-Za-z]+", piece)}
    return {_stem(w) for w in words} | words | {"he", "she", "it", "they", "his", "her"}


class _Namer:
    """Invented words with globally unique stems: BM25 on a name finds only that name's passages."""

    def __init__(self, rng: np.random.Generator, taken: set[str]):
        self.rng = rng
        self.taken = taken
        self._buffer: list[str] = []

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


def _make_name(namer: _Namer, kind: str, short: bool = False) -> tuple[str, dict]:
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


def _twin_name(namer: _Namer, recipe: dict) -> str:
    """A similar name: keep one word, respell the other (one-word names: respell it)."""
    twin = dict(recipe)
    if recipe["v"] and namer.rng.random() < 0.5:
        twin["v"] = namer.near(recipe["v"])
    else:
        twin["w"] = namer.near(recipe["w"])
    return recipe["form"].format(**twin)


# -- passages ---------------------------------------------------------------------------------
# One tuple of wordings per fact; {n} is the name, {s} a person's surname, {p} the pronoun.
# The wording shares no word with the questions ("born", "city", "company", "university",
# "headquartered", "works", "director", "author"...): otherwise the question's generic words
# would pull the same few short passages into every question's top-k, and the necessity check
# would keep rejecting the questions whose answer those passages happen to mention.
_SENTENCES: dict[str, tuple[str, ...]] = {
    "person.birth_year": ("{n} (b. {birth_year}) is a {occupation}.",),
    "person.birthplace": ("{p} is a native of {birthplace}.", "{s} is a native of {birthplace}.",
                          "{s} hails from {birthplace}.", "{s}'s birthplace is {birthplace}."),
    "person.university": ("{s} studied at {university}.", "{s} graduated from {university}.",
                          "{s} was educated at {university}."),
    "person.employer": ("{p} is on the staff of {employer}.", "{s} has been with {employer} since {since}.",
                        "{s} holds a post at {employer}."),
    "city.country": ("{n} is a market town in {country}.", "{n} is a town in {country}.",
                     "{n} lies in the {direction} of {country}."),
    "city.founded": ("{n} was founded in {founded}.", "Founded in {founded}, {n} is known for its {feature}."),
    "city.extra": ("It has a population of about {population}.", "The town is known for its {feature}."),
    "country.state": ("{n} is a {state_form}.",),
    "country.independence": ("{n} gained independence in {independence}.", "{n} became independent in {independence}."),
    "country.extra": ("Its economy rests on {sector} and {sector2}.",),
    "university.city": ("{n} is a public institution in {city}.", "{n} is a private college located in {city}."),
    "university.founded": ("It was founded in {founded}.", "{n} was established in {founded}."),
    "university.extra": ("It is best known for its {field} faculty.",),
    "org.founder": ("{n} is a {industry} firm founded by {founder} in {founded}.",
                    "Founded by {founder} in {founded}, {n} is a {industry} business."),
    "org.hq": ("{n} is based in {hq}.", "{n} has its main offices in {hq}."),
    "org.extra": ("It has about {staff} staff.",),
    "film.director": ("{n} is a {year} {genre} film directed by {director}.",
                      "{n} is a {genre} film from {year}, directed by {director}."),
    "film.shot": ("It was shot in {shot_in}.", "The film was shot on location in {shot_in}."),
    "film.extra": ("The film runs {minutes} minutes.", "{n} received {review} reviews."),
    "book.author": ("{n} is a {year} {genre} novel by {author}.", "{n} is a {genre} novel by {author}, first published in {year}."),
    "book.publisher": ("It was published by {publisher}.",),
    "book.setting": ("The story is set in {setting}.",),
    "book.extra": ("{n} has been translated into {languages} languages.",),
}
# Which sentence key states which relation (for supporting_facts); the rest are context.
_FACT_SENTENCE = {
    ("person", "birth_year"): "person.birth_year", ("person", "birthplace"): "person.birthplace",
    ("person", "university"): "person.university", ("person", "employer"): "person.employer",
    ("city", "country"): "city.country", ("city", "founded"): "city.founded",
    ("country", "independence"): "country.independence",
    ("university", "city"): "university.city", ("university", "founded"): "university.founded",
    ("org", "founder"): "org.founder", ("org", "founded"): "org.founder", ("org", "hq"): "org.hq",
    ("film", "director"): "film.director", ("film", "year"): "film.director",
    ("book", "author"): "book.author", ("book", "year"): "book.author",
}


_AN = re.compile(r"\b([Aa]) (?=[aeiou])")


class _Entity:
    __slots__ = ("kind", "idx", "name", "recipe", "attrs", "split", "twin_of", "role", "sentences", "keys",
                 "passage")

    def __init__(self, kind, idx, name, recipe):
        self.kind, self.idx, self.name, self.recipe = kind, idx, name, recipe
        self.attrs: dict[str, Any] = {}
        self.split: str | None = None
        self.twin_of: _Entity | None = None
        self.role = ""
        self.sentences: list[str] = []
        self.keys: list[str] = []
        self.passage: Passage | None = None


def _render(e: _Entity, rng: np.random.Generator, only: frozenset[str] | None = None) -> None:
    """Fill ``e.sentences``: 2-5 encyclopedia sentences stating only ``e``'s forward relations
    (with ``only``: the name line and the sentences whose keys are in it)."""
    a = e.attrs

    def pick(options):
        return options[int(rng.integers(len(options)))]

    fill: dict[str, Any] = {"n": e.name}
    for rel, value in a.items():
        fill[rel] = value.name if isinstance(value, _Entity) else value
    chosen: list[str] = []
    if e.kind == "person":
        fill.update(s=e.name.split()[-1], p=pick(("He", "She")), occupation=pick(_OCCUPATIONS[e.role]),
                    since=a["birth_year"] + 22 + int(rng.integers(20)))
        rest = ["person.birthplace", "person.university", "person.employer"]
        rng.shuffle(rest)
        chosen = ["person.birth_year", *rest]
    elif e.kind == "city":
        fill.update(direction=pick(_DIRECTIONS), feature=pick(_FEATURES),
                    population=f"{int(rng.integers(20, 900)) * 1000:,}")
        chosen = ["city.country", "city.founded"] + (["city.extra"] if rng.random() < 0.5 else [])
    elif e.kind == "country":
        sectors = rng.choice(len(_SECTORS), size=2, replace=False)
        fill.update(state_form=pick(_STATE_FORMS), sector=_SECTORS[sectors[0]], sector2=_SECTORS[sectors[1]])
        chosen = ["country.state", "country.independence", "country.extra"]
    elif e.kind == "university":
        fill.update(field=pick(_FIELDS))
        chosen = ["university.city", "university.founded"] + (["university.extra"] if rng.random() < 0.6 else [])
    elif e.kind == "org":
        fill.update(industry=pick(_INDUSTRIES), staff=f"{int(rng.integers(2, 400)) * 50:,}")
        chosen = ["org.founder", "org.hq"] + (["org.extra"] if rng.random() < 0.5 else [])
    elif e.kind == "film":
        fill.update(genre=pick(_FILM_GENRES), minutes=int(rng.integers(75, 190)), review=pick(_REVIEWS))
        chosen = ["film.director"] + (["film.shot"] if "shot_in" in a else []) + ["film.extra"]
    elif e.kind == "book":
        fill.update(genre=pick(_BOOK_GENRES), languages=int(rng.integers(2, 40)))
        chosen = (["book.author"] + (["book.publisher"] if "publisher" in a else [])
                  + (["book.setting"] if "setting" in a else []) + ["book.extra"])
    if only is not None:
        chosen = chosen[:1] + [key for key in chosen[1:] if key in only]
    e.keys = chosen
    # "a engineer" -> "an engineer"; names never follow an article, so this only touches wording.
    e.sentences = [_AN.sub(r"\1n ", pick(_SENTENCES[key]).format(**fill)) for key in chosen]


# -- generation -------------------------------------------------------------------------------
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
        self._taken = _fixed_vocabulary()
        namer = _Namer(names_rng, self._taken)
        counts = config.counts()
        self.entities: dict[str, list[_Entity]] = {
            kind: [_Entity(kind, i, *_make_name(namer, kind, config.short_names)) for i in range(counts[kind])]
            for kind in KINDS
        }
        for kind in ANCHOR_KINDS:
            for e in self.entities[kind]:
                e.split = _split_of(config.seed, e.name, config.splits)
        self._relate(relations_rng)
        namer.rng, namer._buffer = twins_rng, []  # twins never shift the real world's names or facts
        self.distractors = self._twins(namer, twins_rng)
        everything = [e for kind in KINDS for e in self.entities[kind]] + self.distractors
        only = config.asked_sentences() if config.facts_only else None
        for e in everything:
            _render(e, text_rng, only)
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
        pools: dict[tuple[str, str | None], list[_Entity]] = {}
        for person, role in zip(E["person"], roles):
            person.role = str(role)
            pools.setdefault((person.role, person.split), []).append(person)
            pools.setdefault(("any", person.split), []).append(person)
        orgs_by_split: dict[str | None, list[_Entity]] = {}
        for org in E["org"]:
            orgs_by_split.setdefault(org.split, []).append(org)

        def person_for(role: str, split: str | None) -> _Entity:
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

    def _twins(self, namer: _Namer, rng: np.random.Generator) -> list[_Entity]:
        """Distractors: same kind, similar name, own facts over real entities; nothing real points to them."""
        d = float(self.config.distractors)
        whole, frac = int(d), d - int(d)
        twins: list[_Entity] = []
        for kind in KINDS:
            for e in self.entities[kind]:
                for _ in range(whole + int(rng.random() < frac)):
                    twin = _Entity(kind, len(twins), _twin_name(namer, e.recipe), e.recipe)
                    twin.twin_of, twin.role = e, e.role
                    twins.append(twin)
        E = self.entities
        people = E["person"] + [t for t in twins if t.kind == "person"]

        def real(kind: str) -> _Entity:
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
    def _walk(start: _Entity, path: tuple[str, ...]) -> tuple[list[tuple[_Entity, str]], Any]:
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
            pool_of: dict[str | None, list[_Entity]] = {}
            if template.other:
                for e in self.entities[template.other]:
                    pool_of.setdefault(e.split, []).append(e)
            for anchor in self.entities[template.anchor]:
                rng = _stable_rng(seed, template.name, anchor.name)
                hops, value = self._walk(anchor, template.path)
                if template.type == "bridge":
                    answer = value.name if isinstance(value, _Entity) else str(value)
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
                        (e.name, e.keys.index(_FACT_SENTENCE[(e.kind, rel)])) for e, rel in hops
                    ),
                    meta={"template": template.name, "anchor": anchor.name},
                )
                out.append((example, anchor.split))
        return out

    def _context(self, gold: list[_Entity], rng: np.random.Generator) -> tuple[Passage, ...]:
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

    def _twins_of(self, e: _Entity) -> list[_Entity]:
        if not hasattr(self, "_twin_index"):
            self._twin_index: dict[int, list[_Entity]] = {}
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
            from toolgym.envs.retrieval.bm25 import BM25Retriever

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
        namer = _Namer(_stable_rng(self.config.seed, "fresh-names", seed), set(self._taken))
        return [_make_name(namer, kind, self.config.short_names)[0] for _ in range(n)]

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


__all__ = ["QUESTION_TYPES", "SPLITS", "TEMPLATES", "SyntheticWorld", "Template", "WorldConfig", "build_world", "leaks"]
