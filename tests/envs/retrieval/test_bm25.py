import pickle
import threading

import bm25s
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from toolgym.envs.retrieval import BM25Retriever, Passage

from .conftest import QUERIES


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_the_right_passage_ranks_first(passages, query, expected):
    (hits,) = BM25Retriever(passages, cache=False).search([query], k=3)
    assert hits[0].passage.id == expected
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_batch_keeps_query_order_and_unknown_words_give_no_hits(passages):
    r = BM25Retriever(passages, cache=False)
    results = r.search(["violin bow", "zzzqqq unknownword", "the of and", "Everest"], k=2)
    assert [h.passage.id for h in results[0]][:1] == ["p6"]
    assert results[1] == [] and results[2] == []
    assert results[3][0].passage.id == "p5"
    assert r.search([], k=3) == []


def test_k_larger_than_the_corpus_is_clamped(passages):
    (hits,) = BM25Retriever(passages, cache=False).search(["capital"], k=100)
    assert 1 <= len(hits) <= len(passages)
    assert len({h.passage.id for h in hits}) == len(hits)


def test_empty_corpus_is_refused():
    with pytest.raises(ValueError, match="empty corpus"):
        BM25Retriever([], cache=False)


words = st.sampled_from("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split())


@settings(max_examples=40, deadline=None)
@given(
    docs=st.lists(st.lists(words, min_size=0, max_size=12), min_size=1, max_size=25),
    query=st.lists(words, min_size=1, max_size=5),
    k=st.integers(1, 30),
)
def test_scores_match_bm25s_own_retrieval(docs, query, k):
    """The postings-only scorer returns bm25s's scores (it reimplements bm25s's query path)."""
    assume(any(docs))  # bm25s itself cannot index a corpus without a single word
    passages = [Passage(str(i), "", " ".join(d)) for i, d in enumerate(docs)]
    r = BM25Retriever(passages, cache=False)
    (hits,) = r.search([" ".join(query)], k)
    # The reference: bm25s's own indexing and scoring of the same tokens.
    reference_index = bm25s.BM25(k1=0.9, b=0.4)
    reference_index.index(r._tokenize([p.contents for p in passages], return_ids=True), show_progress=False)
    query_tokens = r._tokenize([" ".join(query)], return_ids=False)[0]
    ids = [reference_index.vocab_dict[t] for t in query_tokens if t in reference_index.vocab_dict]
    reference = reference_index.get_scores(ids) if ids else np.zeros(len(passages))
    expected = sorted((float(s) for s in reference if s > 0), reverse=True)[:k]
    np.testing.assert_allclose([h.score for h in hits], expected, rtol=1e-5)
    for h in hits:  # each hit carries its own document's score
        assert h.score == pytest.approx(float(reference[int(h.passage.id)]), rel=1e-5)


def test_indexing_in_chunks_gives_the_same_index(monkeypatch, passages):
    import toolgym.envs.retrieval.bm25 as bm25

    whole = BM25Retriever(passages * 5, cache=False)
    monkeypatch.setattr(bm25, "_CHUNK", 3)
    chunked = BM25Retriever(passages * 5, cache=False)
    for key in ("data", "indices", "indptr"):
        np.testing.assert_allclose(chunked._index.scores[key], whole._index.scores[key], rtol=1e-6)
    assert chunked.search(["capital city"], 10) == whole.search(["capital city"], 10)


@pytest.mark.parametrize("cache", [True, False])
def test_pickle_round_trip_searches_the_same(passages, cache):
    r = BM25Retriever(passages, cache=cache)
    r.search(["warm the per-thread buffer"], 1)
    clone = pickle.loads(pickle.dumps(r))
    for query, _ in QUERIES:
        assert clone.search([query], 3) == r.search([query], 3)


def test_cached_pickle_does_not_carry_the_index(passages, tmp_path):
    cached = BM25Retriever(passages, cache_dir=tmp_path)
    uncached = BM25Retriever(passages, cache=False)
    assert len(pickle.dumps(cached)) < len(pickle.dumps(uncached))


def test_cache_is_reused_and_a_corrupt_cache_is_rebuilt(passages, tmp_path):
    first = BM25Retriever(passages, cache_dir=tmp_path)
    assert first.cache_path.is_dir()
    for f in first.cache_path.iterdir():
        if f.suffix == ".npy":
            f.write_bytes(b"garbage")
    second = BM25Retriever(passages, cache_dir=tmp_path)
    assert second.search(["capital of Italy"], 1)[0][0].passage.id == "p1"
    third = BM25Retriever(passages, cache_dir=tmp_path)  # the rebuilt cache loads
    assert third.search(["violin"], 1) == second.search(["violin"], 1)


def test_other_corpus_gets_another_cache_entry(passages, tmp_path):
    a = BM25Retriever(passages, cache_dir=tmp_path)
    b = BM25Retriever(passages[:-1], cache_dir=tmp_path)
    assert a.cache_path != b.cache_path
    assert b.search(["Tokyo Japan"], 1) == [[]] or b.search(["Tokyo Japan"], 1)[0][0].passage.id != "p7"


def test_concurrent_searches_from_threads_agree(passages):
    r = BM25Retriever(passages, cache=False)
    expected = {q: r.search([q], 3) for q, _ in QUERIES}
    errors = []

    def work():
        for _ in range(30):
            for q, _ in QUERIES:
                if r.search([q], 3) != expected[q]:
                    errors.append(q)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
