"""The synthetic multi-hop world: determinism, splits, hops, searchability and the necessity rule."""

from __future__ import annotations

import doctest
import re
from collections import Counter

import pytest

from toolgym.envs.multihop_qa import synthetic
from toolgym.envs.multihop_qa.example import QAExample
from toolgym.envs.multihop_qa.metrics import normalize_answer
from toolgym.envs.multihop_qa.synthetic import (
    SPLITS,
    TEMPLATES,
    SyntheticWorld,
    WorldConfig,
    build_world,
    leaks,
    names,
    passages,
)
from toolgym.envs.retrieval import BM25Retriever


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return build_world()  # the default world: what gym.make("MultiHopQA-v0") asks


@pytest.fixture(scope="module")
def small() -> SyntheticWorld:
    return build_world(n_people=160, seed=7)


def all_questions(world: SyntheticWorld) -> list[QAExample]:
    return [q for split in SPLITS for q in world.questions(split)]


def test_doctest():
    assert doctest.testmod(synthetic).failed == 0


# -- determinism ------------------------------------------------------------------------------
def test_same_seed_same_world_different_seed_different_world():
    config = WorldConfig(n_people=120, seed=11)
    a, b = SyntheticWorld(config), SyntheticWorld(config)  # bypass the cache: two real builds
    assert a.passages == b.passages
    for split in SPLITS:
        assert a.questions(split) == b.questions(split)
        assert [q.context for q in a.questions(split)] == [q.context for q in b.questions(split)]
    c = SyntheticWorld(WorldConfig(n_people=120, seed=12))
    assert a.passages != c.passages
    assert [q.question for q in a.questions("train")] != [q.question for q in c.questions("train")]


def test_build_world_is_cached_and_accepts_lists():
    assert build_world(n_people=160, seed=7) is build_world(WorldConfig(n_people=160), seed=7)
    assert build_world(n_people=160, seed=7, hops=[2, 4]) is build_world(n_people=160, seed=7)


def test_distractor_knob_leaves_the_real_world_unchanged():
    none, some = build_world(n_people=120, distractors=0.0), build_world(n_people=120, distractors=2.0)
    assert not none.distractors and len(none.passages) == none.stats()["entities"]
    assert len(some.distractors) == 2 * len(none.passages)
    real = {p.title: p.text for p in none.passages}
    assert {t: some.passage(t).text for t in real} == real


# -- corpus -----------------------------------------------------------------------------------
def test_passages_have_unique_ids_and_titles(world):
    assert len({p.id for p in world.passages}) == len(world.passages)
    assert len({p.title for p in world.passages}) == len(world.passages)
    # the env matches found titles after answer normalisation: that must stay unique too
    assert len({normalize_answer(p.title) for p in world.passages}) == len(world.passages)
    for e in world._entity_of.values():
        assert 2 <= len(e.sentences) <= 5 and e.passage.text == " ".join(e.sentences)


def test_passage_wording_shares_no_word_with_the_questions():
    """Generic question words would otherwise pull the same passages into every top-k."""
    import bm25s

    def words(texts):
        texts = [re.sub(r"\{\w+\}", " ", t) for t in texts]
        tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
        return {names._stem(w) for doc in tokens for w in doc}

    wording = words([w for options in passages._SENTENCES.values() for w in options]
                    + [w for options in passages._OCCUPATIONS.values() for w in options]
                    + list(names._ORG_SUFFIXES) + list(names._UNIVERSITY_FORMS))
    questions = words([t.text for t in TEMPLATES.values()])
    assert wording & questions == set()


def test_distractors_have_similar_names_and_are_never_gold(world):
    gold = {t for q in all_questions(world) for t in q.supporting_titles}
    twins = [e for e in world.distractors]
    assert len(twins) == pytest.approx(len(world.passages) / 2, rel=0.01)
    assert gold.isdisjoint(t.name for t in twins)
    for twin in twins[:200]:
        real = twin.twin_of
        assert twin.kind == real.kind and twin.name != real.name
        assert world.is_distractor(twin.name) and not world.is_distractor(real.name)
        shared = set(twin.name.split()) & set(real.name.split())
        respelled = len(twin.name) == len(real.name)  # one-word names keep their length
        assert shared or respelled, (twin.name, real.name)


@pytest.mark.slow
def test_passages_state_only_forward_relations(world):
    """A film's or book's title occurs in no other passage, so only its own passage names it."""
    texts = [" " + p.contents + " " for p in world.passages]
    for kind in ("film", "book"):
        for e in world.entities[kind][:60]:
            mentions = [t for t in texts if re.search(rf"\b{re.escape(e.name)}\b", t)]
            assert len(mentions) == 1, e.name


# -- questions --------------------------------------------------------------------------------
def test_splits_share_no_question_text_or_anchor(world):
    seen_ids, seen_text, seen_anchor = {}, {}, {}
    for split in SPLITS:
        qs = world.questions(split)
        assert qs, split
        for q in qs:
            for seen, key in ((seen_ids, q.id), (seen_text, q.question), (seen_anchor, q.meta["anchor"])):
                assert seen.setdefault(key, split) == split, (key, split)
    sizes = {split: len(world.questions(split)) for split in SPLITS}
    assert sizes["train"] > 5 * sizes["test"]


def test_question_chains_stay_in_their_split(world):
    """Test questions reach only test films, books, companies and people (directors included)."""
    for split in SPLITS:
        for q in world.questions(split):
            for title in q.supporting_titles:
                entity = world._entity_of[title]
                assert entity.twin_of is None
                if entity.kind in synthetic.ANCHOR_KINDS:
                    assert entity.split == split, (q.id, title)


def test_questions_come_in_a_fixed_order_and_are_copies(world):
    first = world.questions("train")
    first.pop()
    assert len(world.questions("train")) == len(first) + 1
    assert Counter(q.meta["template"] for q in world.questions("train")[:200]).most_common(1)[0][1] < 100


def test_hops_types_and_supporting_titles(world):
    titles = {p.title for p in world.passages}
    qs = all_questions(world)
    assert {q.type for q in qs} == {"bridge", "comparison"}
    assert {q.hops for q in qs} == {2, 3, 4}
    for q in qs:
        template = TEMPLATES[q.meta["template"]]
        assert q.hops == len(q.supporting_titles) == template.hops == len(q.supporting_facts)
        assert q.type == template.type
        assert set(q.supporting_titles) <= titles
        assert len(set(q.supporting_titles)) == q.hops
        assert q.id.startswith("syn-0-") and q.answer
        context_titles = [p.title for p in q.context]
        assert set(q.supporting_titles) <= set(context_titles) and len(context_titles) >= 10


@pytest.mark.parametrize("hops", [(2, 2), (3, 3), (4, 4), (3, 4)])
def test_hops_knob(hops):
    world = build_world(n_people=160, seed=7, hops=hops)
    qs = all_questions(world)
    assert qs and all(hops[0] <= q.hops <= hops[1] for q in qs)


def test_question_types_knob():
    world = build_world(n_people=160, seed=7, question_types=("comparison",))
    assert {q.type for q in all_questions(world)} == {"comparison"}


def test_templates_filter_gives_the_cpu_demo_task():
    world = build_world(n_people=160, seed=7, templates=("film_director_birthplace",))
    for q in all_questions(world):
        assert q.meta["template"] == "film_director_birthplace" and q.hops == 2 and q.type == "bridge"
        assert q.question == f"Where was the director of {q.supporting_titles[0]} born?"
        film, director = (world.passage(t).text for t in q.supporting_titles)
        assert q.supporting_titles[1] in film and q.answer in director


def test_short_names_gives_one_word_people_and_films_and_still_asks_questions():
    long = build_world(n_people=160, seed=7, templates=("film_director_birthplace",))
    short = build_world(n_people=160, seed=7, templates=("film_director_birthplace",), short_names=True)
    assert all(len(q.supporting_titles[1].split()) == 2 for q in all_questions(long))  # people: two words
    questions = all_questions(short)
    assert len(questions) > 20
    for q in questions:
        film, director = q.supporting_titles
        assert " " not in film and " " not in director
        assert director in short.passage(film).text and q.answer in short.passage(director).text
    assert all(" " not in name for name in short.new_entity_names(20, "person"))
    with pytest.raises(ValueError, match="short_names must be true or false, got 'yes'"):
        build_world(n_people=160, short_names="yes")


def test_facts_only_passages_state_just_the_asked_relations():
    full = build_world(n_people=160, seed=7, templates=("film_director_birthplace",))
    lean = build_world(n_people=160, seed=7, templates=("film_director_birthplace",), facts_only=True)
    assert full.config.asked_sentences() == {"film.director", "person.birthplace"}
    # a person's passage keeps the name line and the birthplace only
    assert len(all_questions(lean)) > 20
    for q in all_questions(lean):
        film, director = (lean.passage(t).text for t in q.supporting_titles)
        assert q.supporting_titles[1] in film and q.answer in director
        assert lean._entity_of[q.supporting_titles[0]].keys == ["film.director"]
        assert lean._entity_of[q.supporting_titles[1]].keys == ["person.birth_year", "person.birthplace"]
        assert len(full._entity_of[q.supporting_titles[1]].keys) == 4  # + university, employer
    # all templates: every relation some question reads stays, so the oracle can still answer
    everything = build_world(n_people=160, seed=7, facts_only=True)
    for q in all_questions(everything)[:50]:
        assert q.answer in " ".join(everything.passage(t).text for t in q.supporting_titles) or q.type == "comparison"
    with pytest.raises(ValueError, match="facts_only must be true or false, got 1"):
        build_world(n_people=160, facts_only=1)


def test_every_gold_passage_is_found_by_searching_its_title(world):
    """The oracle agent searches each supporting title in hop order: top-3 must hold that passage."""
    titles = sorted({t for q in all_questions(world) for t in q.supporting_titles})
    for title, hits in zip(titles, world.retriever.search(titles, k=3)):
        assert title in [h.passage.title for h in hits], title


def test_each_hop_names_the_next_and_the_last_holds_the_answer(world):
    for q in all_questions(world):
        passages = [world.passage(t) for t in q.supporting_titles]
        sentences = [world._entity_of[title].sentences[i] for title, i in q.supporting_facts]
        assert [title for title, _ in q.supporting_facts] == list(q.supporting_titles)
        for sentence, next_title in zip(sentences, q.supporting_titles[1:]):
            if q.type == "bridge":
                assert next_title in sentence, (sentence, next_title)
        if q.type == "bridge":
            assert q.answer in sentences[-1], (q.answer, sentences[-1])
        if q.type == "bridge":
            for passage, next_title in zip(passages, q.supporting_titles[1:]):
                assert next_title in passage.text
            assert re.search(rf"\b{re.escape(q.answer)}\b", passages[-1].text), q
        else:
            assert q.answer in q.supporting_titles


def test_comparison_answers_are_correct_and_never_ties(world):
    def year_of(person_title):
        return int(re.search(r"\(b\. (\d{4})\)", world.passage(person_title).text).group(1))

    checked = 0
    for q in all_questions(world):
        if q.type != "comparison":
            continue
        t = q.supporting_titles
        template = TEMPLATES[q.meta["template"]]
        if template.hops == 4:  # [a, a's person, b, b's person]
            ya, yb = year_of(t[1]), year_of(t[3])
            assert ya != yb and q.answer == (t[0] if ya < yb else t[2])
        else:  # [film, its director, person]
            ya, yb = year_of(t[1]), year_of(t[2])
            assert ya != yb and q.answer == (t[1] if ya < yb else t[2])
        checked += 1
    assert checked > 100


def test_no_question_is_answered_by_what_its_text_retrieves(world):
    """The necessity rule, re-checked with an independent index over the same corpus."""
    retriever = BM25Retriever(world.passages, cache=False)
    qs = all_questions(world)
    k = world.config.leak_check_k
    for q, hits in zip(qs, retriever.search([q.question for q in qs], k=k)):
        top = [h.passage for h in hits]
        assert not set(q.supporting_titles) <= {p.title for p in top}, q
        if q.type == "bridge":
            answer = f" {normalize_answer(q.answer)} "
            assert all(answer not in f" {normalize_answer(p.contents)} " for p in top), q


def test_the_necessity_check_rejects_leaking_questions(world):
    assert world.rejected and all(not q.id.startswith("x") for q in world.rejected)
    retriever = world.retriever
    for q, hits in zip(world.rejected[:50], retriever.search([q.question for q in world.rejected[:50]], k=5)):
        assert leaks(q, [h.passage for h in hits])
    # A one-hop question in disguise: the person is named, so their own passage gives the answer.
    person = world.entities["person"][0]
    city = person.attrs["birthplace"].name
    leaky = QAExample(id="x", question=f"Where was {person.name} born?", answer=city,
                      supporting_titles=(person.name, city), type="bridge", hops=2)
    top = [h.passage for h in retriever.search([leaky.question], k=5)[0]]
    assert leaks(leaky, top)
    # A comparison whose gold passages are all named in the text leaks too.
    a, b = world.entities["org"][:2]
    both = QAExample(id="y", question=f"Which was founded earlier, {a.name} or {b.name}?", answer=a.name,
                     supporting_titles=(a.name, b.name), type="comparison", hops=2)
    assert leaks(both, [h.passage for h in retriever.search([both.question], k=5)[0]])


def test_new_entity_names_are_fresh_and_deterministic(world):
    names = world.new_entity_names(200)
    assert names == world.new_entity_names(200) and names != world.new_entity_names(200, seed=1)
    assert len(set(names)) == 200
    words = {w.lower() for p in world.passages for w in re.findall(r"[A-Za-z]+", p.title)}
    assert all(not set(n.lower().split()) & words for n in names)
    assert all(len(n.split()) == 2 for n in names)
    assert world.new_entity_names(3, kind="film")
    with pytest.raises(ValueError, match="Did you mean 'film'"):
        world.new_entity_names(3, kind="flim")


def test_stats_and_larger_worlds(small):
    stats = small.stats()
    assert stats["passages"] == len(small.passages) == stats["entities"] + stats["distractors"]
    assert sum(stats[s] for s in SPLITS) == len(all_questions(small))


# -- configuration errors ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_people": 10}, r"n_people must be an int >= 40.*got 10"),
        ({"hops": (3, 2)}, r"hops must be \(min, max\).*\(3, 2\)"),
        ({"hops": (1, 1)}, r"No question template matches hops=\(1, 1\)"),
        ({"question_types": ("bridges",)}, r"Unknown question type 'bridges'. Did you mean 'bridge'"),
        ({"templates": ("film_director_birthplac",)}, r"Did you mean 'film_director_birthplace'"),
        ({"templates": ("org_hq_country",), "question_types": ("comparison",)}, "No question template matches"),
        ({"distractors": -1}, r"distractors must be a number in \[0, 10\].*-1"),
        ({"leak_check_k": 0}, r"leak_check_k must be an int >= 1, got 0"),
        ({"splits": (0.5, 0.1, 0.1)}, r"summing to 1, got \(0.5, 0.1, 0.1\)"),
        ({"seed": -3}, r"seed must be a non-negative int, got -3"),
    ],
)
def test_config_errors_name_the_value_and_the_fix(overrides, message):
    with pytest.raises(ValueError, match=message):
        WorldConfig(**overrides)


def test_build_world_and_questions_reject_unknown_names(small):
    with pytest.raises(ValueError, match="Did you mean 'n_people'"):
        build_world(n_peoples=100)
    with pytest.raises(ValueError, match="Did you mean 'validation'"):
        small.questions("valid")
    with pytest.raises(KeyError, match="No passage titled"):
        small.passage("Nowhere At All")


def test_empty_split_is_an_error_with_the_fix():
    with pytest.raises(ValueError, match="has no questions.*Increase n_people"):
        build_world(n_people=40, templates=("org_hq_country",), splits=(0.98, 0.01, 0.01))
