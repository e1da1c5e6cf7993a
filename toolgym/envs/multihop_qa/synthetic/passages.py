"""How the synthetic world is written: every entity as a short encyclopedia-style passage that
states only its own forward relations, in wording that shares no word with the questions."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from toolgym.envs.multihop_qa.synthetic.schema import Entity

# Fixed wording of passages. Invented words must not stem to any of these (WORDING below), or a
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
FACT_SENTENCE = {
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

# Every fixed string passages are written with: invented names avoid its words (names.reserved_words).
WORDING: tuple[str, ...] = (
    *_INDUSTRIES, *_FILM_GENRES, *_BOOK_GENRES, *_FIELDS, *_FEATURES, *_STATE_FORMS, *_SECTORS, *_DIRECTIONS,
    *_REVIEWS, *(w for options in _OCCUPATIONS.values() for w in options),
    *(w for options in _SENTENCES.values() for w in options),
)


def render(e: Entity, rng: np.random.Generator, only: frozenset[str] | None = None) -> None:
    """Fill ``e.sentences``: 2-5 encyclopedia sentences stating only ``e``'s forward relations
    (with ``only``: the name line and the sentences whose keys are in it)."""
    a = e.attrs

    def pick(options):
        return options[int(rng.integers(len(options)))]

    fill: dict[str, Any] = {"n": e.name}
    for rel, value in a.items():
        fill[rel] = value.name if isinstance(value, Entity) else value
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
