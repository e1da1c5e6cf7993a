"""Corpus modes and gold-evidence matching on the real samples of all three datasets."""

from __future__ import annotations

import gzip
import json
import random

import pytest

from toolgym.envs.multihop_qa.corpus import (
    example_corpus,
    is_supporting,
    load_corpus_jsonl,
    normalize_title,
    pooled_corpus,
    recall_at_k,
    supporting_matcher,
    supporting_passages,
)
from toolgym.envs.multihop_qa.datasets import DatasetFormatError, load_examples
from toolgym.envs.multihop_qa.example import QAExample
from toolgym.envs.retrieval.base import Passage

FILES = {
    "hotpotqa": "hotpotqa_dev_distractor.sample.json",
    "2wikimultihopqa": "2wikimultihopqa_dev.sample.json",
    "musique": "musique_ans_dev.sample.jsonl",
}


@pytest.fixture(params=list(FILES))
def examples(request, shared_data):
    return load_examples(request.param, data_files=shared_data / FILES[request.param])


def _key(p):
    return " ".join(p.title.split()), " ".join(p.text.split())


def test_example_corpus_is_the_context(examples):
    e = examples[0]
    assert example_corpus(e) == list(e.context)
    with pytest.raises(ValueError, match=r"has no context paragraphs.*external corpus"):
        example_corpus(QAExample(id="x", question="q?", answer="a"))


def test_pooled_corpus_dedups_with_stable_unique_ids(examples):
    pool = pooled_corpus(examples)
    all_paragraphs = [p for e in examples for p in e.context]
    assert len(pool) == len({_key(p) for p in all_paragraphs})
    assert len(pool) < len(all_paragraphs)  # the samples share paragraphs across questions
    assert len({p.id for p in pool}) == len(pool)
    assert len({_key(p) for p in pool}) == len(pool)
    # ids depend on content only: same ids from a shuffled order and from a subset
    shuffled = examples[:]
    random.Random(0).shuffle(shuffled)
    assert {p.id: p for p in pooled_corpus(shuffled)} == {p.id: p for p in pool}
    ids = {_key(p): p.id for p in pool}
    assert all(ids[_key(p)] == p.id for p in pooled_corpus(examples[:10]))


def test_every_gold_passage_is_in_the_pool_and_supporting(examples):
    pool = pooled_corpus(examples)
    for e in examples:
        gold = supporting_passages(e)
        assert len(gold) >= 2
        matcher = supporting_matcher(e)
        pooled_gold = [p for p in pool if matcher(p)]
        assert {_key(p) for p in gold} <= {_key(p) for p in pooled_gold}, e.id


def test_is_supporting_flags_exactly_the_gold_context_paragraphs(examples):
    for e in examples:
        flagged = [p for p in e.context if is_supporting(p, e)]
        assert flagged  # a process reward is reachable for every example
        if e.supporting_idxs:  # MuSiQue: exactly the is_supporting paragraphs
            assert sorted(p.id for p in flagged) == sorted(f"{e.id}-{i}" for i in e.supporting_idxs)
        else:
            assert {p.title for p in flagged} == set(e.supporting_titles)
            assert all(p.title in e.supporting_titles for p in flagged)


def test_musique_title_match_over_flags_where_pages_repeat(shared_data):
    """Why MuSiQue matches by (title, text): a page gives gold and distractor paragraphs."""
    examples = load_examples("musique", data_files=shared_data / FILES["musique"])
    ambiguous = [
        e for e in examples
        if {p.title for p in supporting_passages(e)} & {p.title for p in e.context if p not in supporting_passages(e)}
    ]
    assert len(ambiguous) == 31
    e = ambiguous[0]
    distractor = next(p for p in e.context if p.title in e.supporting_titles and p not in supporting_passages(e))
    assert not is_supporting(distractor, e)
    assert is_supporting(distractor, e, match="title")
    # the exact match tolerates white space and title case, not different text
    gold = supporting_passages(e)[0]
    assert is_supporting(Passage("other-id", gold.title.upper(), "  " + gold.text.replace(" ", "\n ") + " "), e)
    assert not is_supporting(Passage("g", gold.title, gold.text + " More."), e)
    with pytest.raises(ValueError, match="match must be"):
        is_supporting(gold, e, match="fuzzy")


def test_title_match_is_normalised(shared_data):
    e = load_examples("hotpotqa", data_files=shared_data / FILES["hotpotqa"], limit=1)[0]
    assert is_supporting(Passage("w1", "scott_derrickson", "anything"), e)
    assert not is_supporting(Passage("w2", "Scott Derrickson (actor)", "anything"), e)
    assert normalize_title("  Ed\u00a0Wood ") == "ed wood"


def test_recall_at_k(shared_data):
    e = load_examples("musique", data_files=shared_data / FILES["musique"], limit=1)[0]
    gold = supporting_passages(e)
    distractors = [p for p in e.context if p not in gold]
    assert recall_at_k(distractors, e) == 0.0
    assert recall_at_k([gold[0], *distractors[:3]], e) == 0.5
    assert recall_at_k(list(e.context), e) == 1.0
    h = load_examples("hotpotqa", data_files=shared_data / FILES["hotpotqa"], limit=1)[0]
    assert recall_at_k([p for p in h.context if p.title == "Ed Wood"], h) == 0.5


# --------------------------------------------------------------------------- JSONL corpora


def test_load_corpus_jsonl_both_row_shapes(tmp_path):
    rows = [
        {"id": "0", "contents": '"Aaron"\nAaron is a prophet, high priest, and the brother of Moses.'},
        {"id": 1, "contents": "Untitled text with no title line"},
        {"id": "2", "title": "Rome", "text": "Rome is the capital of Italy."},
        {"id": "3", "contents": 'Plain title\nSome "quoted" text.'},
    ]
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    passages = load_corpus_jsonl(path)
    assert passages == [
        Passage("0", "Aaron", "Aaron is a prophet, high priest, and the brother of Moses."),
        Passage("1", "", "Untitled text with no title line"),
        Passage("2", "Rome", "Rome is the capital of Italy."),
        Passage("3", "Plain title", 'Some "quoted" text.'),
    ]
    gz = tmp_path / "corpus.jsonl.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert load_corpus_jsonl(gz) == passages


def test_pooled_corpus_round_trips_through_search_r1_rows(shared_data, tmp_path):
    examples = load_examples("hotpotqa", data_files=shared_data / FILES["hotpotqa"])
    pool = pooled_corpus(examples)
    path = tmp_path / "pool.jsonl"
    path.write_text("".join(json.dumps({"id": p.id, "contents": f'"{p.title}"\n{p.text}'}) + "\n" for p in pool))
    loaded = load_corpus_jsonl(path)
    assert loaded == pool
    assert all(any(is_supporting(p, e) for p in loaded) for e in examples[:20])


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "1", "text": "ok"}', '{"id": "2", "text": "cut'], r"line 2 is not valid JSON"),
        (['{"id": "1", "text": "ok"}', "[1, 2]"], r"line 2: expected a JSON object, got list"),
        (['{"title": "T", "text": "no id"}'], r"line 1: missing field 'id'.*fields present: text, title"),
        (['{"id": "1", "title": "T"}'], r"line 1: missing field 'text' \(or Search-R1's 'contents'\)"),
        (['{"id": "1", "contents": 3}'], r"line 1: field 'contents' must be a string"),
        (['{"id": "7", "text": "a"}', "", '{"id": "7", "text": "b"}'], r"line 3: duplicate id '7' \(first on line 1\)"),
        (["", "  "], r"has no passages"),
    ],
)
def test_load_corpus_jsonl_errors_name_the_line(tmp_path, lines, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(DatasetFormatError, match=r"bad\.jsonl.*" + message):
        load_corpus_jsonl(path)


def test_load_corpus_jsonl_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        load_corpus_jsonl(tmp_path / "missing.jsonl")


def test_supporting_matcher_is_picklable_and_keys_pages_once(shared_data):
    import pickle

    e = load_examples("hotpotqa", data_files=shared_data / FILES["hotpotqa"], limit=1)[0]
    matcher = pickle.loads(pickle.dumps(supporting_matcher(e)))
    assert matcher(Passage("a", "Ed Wood", "one paragraph")) and not matcher(Passage("b", "Ed Wood (film)", "x"))
    # by title: two paragraphs of one gold page are one piece of evidence
    assert matcher.key(Passage("a", "Ed Wood", "one")) == matcher.key(Passage("b", "ed_wood", "two"))
    m = load_examples("musique", data_files=shared_data / FILES["musique"], limit=1)[0]
    exact = supporting_matcher(m)
    gold = supporting_passages(m)
    assert [exact(p) for p in gold] == [True, True] and exact.key(gold[0]) != exact.key(gold[1])
