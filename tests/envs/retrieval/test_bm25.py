import pickle
import threading

import bm25s
import numpy as np
import pytest
import Stemmer
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


def reference_tokens(texts):
    """bm25s's own tokenisation, the rules the index must follow."""
    return bm25s.tokenize(list(texts), stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False,
                          show_progress=False)


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
    # The reference: bm25s's own tokenisation, indexing and scoring.
    reference_index = bm25s.BM25(k1=0.9, b=0.4)
    reference_index.index(bm25s.tokenize([p.contents for p in passages], stopwords="en",
                                         stemmer=Stemmer.Stemmer("english"), show_progress=False),
                          show_progress=False)
    query_tokens = reference_tokens([" ".join(query)])[0]
    ids = [reference_index.vocab_dict[t] for t in query_tokens if t in reference_index.vocab_dict]
    reference = reference_index.get_scores(ids) if ids else np.zeros(len(passages))
    expected = sorted((float(s) for s in reference if s > 0), reverse=True)[:k]
    np.testing.assert_allclose([h.score for h in hits], expected, rtol=1e-5)
    for h in hits:  # each hit carries its own document's score
        assert h.score == pytest.approx(float(reference[int(h.passage.id)]), rel=1e-5)


texts = st.lists(st.sampled_from(["the", "and", "running", "Runs", "x", "ab", "Éa", "ßx", "İi", "ΣΑΣ", "ς1",
                                  "a_b", "don't", "co-op", " ", ".", ",", "\n", "\t"]), max_size=15).map("".join)


@settings(max_examples=200, deadline=None)
@given(text=texts)
def test_tokenisation_is_bm25s_tokenisation(text):
    r = BM25Retriever([Passage("0", "", text + " running and more text")], cache=False)
    expected = reference_tokens([text])[0]
    assert r.tokenize(text) == expected
    assert r._query_term_ids(text) == [r._vocab[t] for t in expected]  # the indexed words are known


def zipf_corpus(seed: int, n_docs: int, vocab: int = 300):
    """Documents of Zipfian words: frequent terms with long postings, as in real text."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    names = [f"w{i}x" for i in range(vocab)]
    docs = [[names[w] for w in rng.choice(vocab, size=int(rng.integers(0, 40)), p=p)] for _ in range(n_docs)]
    queries = [" ".join(names[w] for w in rng.choice(vocab, size=int(rng.integers(1, 7)), p=p ** 0.5 / (p ** 0.5).sum()))
               for _ in range(30)]
    return [Passage(str(i), "", " ".join(d)) for i, d in enumerate(docs)], queries


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n_docs=st.integers(1, 600), k=st.sampled_from([1, 3, 10, 50]))
def test_pruned_search_equals_exhaustive_scoring(seed, n_docs, k):
    """MaxScore skips postings but returns exactly the exhaustive top k: same documents, same float32 scores."""
    import toolgym.envs.retrieval.bm25 as bm25

    passages, queries = zipf_corpus(seed, n_docs)
    assume(any(p.text for p in passages))
    r = BM25Retriever(passages, cache=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bm25, "_EXHAUSTIVE", 0)  # prune every query, however small
        for q in queries:
            check_pruned(r, q, k)


def check_pruned(r, q, k):
    ids = r._query_term_ids(q)
    if not ids:
        return
    docs, scores = r._top_k(ids, k)
    matrix = r._index.scores
    full = np.zeros(len(r), dtype=np.float32)  # every document, summed in query order
    for t in ids:
        s, e = matrix["indptr"][t], matrix["indptr"][t + 1]
        full[matrix["indices"][s:e]] += matrix["data"][s:e]
    order = np.lexsort((np.arange(len(r)), -full))[:k]
    order = order[full[order] > 0]
    scores, docs = scores[scores > 0], docs[scores > 0]
    np.testing.assert_array_equal(scores, full[order])  # bit for bit
    assert list(docs) == list(order)  # ties too: by position


def test_indexing_in_chunks_gives_the_same_index(monkeypatch, passages):
    import toolgym.envs.retrieval.bm25 as bm25

    whole = BM25Retriever(passages * 5, cache=False)
    monkeypatch.setattr(bm25, "_CHUNK", 5)
    monkeypatch.setattr(bm25, "_TOKENISE", 2)  # sub-batches that do not divide a chunk
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
