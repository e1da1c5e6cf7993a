import pytest

from toolgym.envs.retrieval import BACKENDS, BM25Retriever, Retriever, make_retriever


def test_default_backend_is_bm25(passages):
    retriever = make_retriever(passages=passages, cache=False)
    assert isinstance(retriever, BM25Retriever)
    assert isinstance(retriever, Retriever)


def test_unknown_backend_suggests_the_closest_and_lists_all():
    with pytest.raises(ValueError, match="Did you mean 'lucene'") as err:
        make_retriever("lucine", [])
    for name in BACKENDS:
        assert name in str(err.value)


def test_backend_names_are_case_insensitive(passages):
    assert isinstance(make_retriever("BM25", passages, cache=False), BM25Retriever)


@pytest.mark.parametrize(
    ("backend", "kwargs", "message"),
    [
        ("http", {}, "needs url="),
        ("http", {"url": "http://127.0.0.1:1/retrieve", "index_path": "x"}, "does not take index_path"),
        ("bm25", {"url": "http://127.0.0.1:1"}, "does not take url"),
        ("bm25", {"index_path": "some/index"}, "does not take index_path"),
        ("bm25", {}, "needs passages"),
        ("dense", {}, "needs passages"),
    ],
)
def test_arguments_a_backend_cannot_use_are_named(backend, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_retriever(backend, **kwargs)


def test_http_accepts_and_ignores_passages(passages):
    # The env passes its passages to every backend; the server holds the corpus.
    retriever = make_retriever("http", passages, url="http://127.0.0.1:9/retrieve")
    assert retriever.url == "http://127.0.0.1:9/retrieve"
