"""The question templates of the synthetic world: 2-4 hop bridge questions that follow a chain of
relations, and comparisons whose compared years sit behind a bridge hop."""

from __future__ import annotations

from dataclasses import dataclass

QUESTION_TYPES = ("bridge", "comparison")


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
