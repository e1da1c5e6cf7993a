"""Lucene via pyserini. CI installs the pyserini extra (.ci/run); without it every test here skips."""

import pickle
import socket
import subprocess
import sys

import pytest

from toolgym.envs.retrieval import make_retriever
from toolgym.envs.retrieval.lucene import lucene_available

from .conftest import QUERIES

pytestmark = pytest.mark.slow  # the JVM start and Anserini's indexer take seconds


@pytest.fixture(scope="module", autouse=True)
def _needs_lucene():
    """Checked when a test runs, not at collection: starting the JVM takes seconds."""
    ok, why = lucene_available()
    if not ok:
        pytest.skip(f"lucene backend unavailable ({why}); pip install 'toolgym[pyserini]'")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from .conftest import PASSAGES

    cache = tmp_path_factory.mktemp("lucene-cache")
    return make_retriever("lucene", PASSAGES, cache_dir=cache), cache


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_the_right_passage_ranks_first(built, query, expected):
    retriever, _ = built
    (hits,) = retriever.search([query], 3)
    assert hits[0].passage.id == expected
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_batch_keeps_query_order(built):
    retriever, _ = built
    queries = [q for q, _ in QUERIES]
    batch = retriever.search(queries, 2)
    assert [hits[0].passage.id for hits in batch] == [e for _, e in QUERIES]
    assert batch == [retriever.search([q], 2)[0] for q in queries]
    assert retriever.search([], 2) == []


def test_agrees_with_bm25_on_the_top_hit(built, passages):
    retriever, _ = built
    bm25 = make_retriever("bm25", passages, cache=False)
    for query, _ in QUERIES:
        assert retriever.search([query], 1)[0][0].passage == bm25.search([query], 1)[0][0].passage


def test_cached_index_is_reused_and_a_corrupt_one_rebuilt(built, passages):
    retriever, cache = built
    again = make_retriever("lucene", passages, cache_dir=cache)
    assert again.index_path == retriever.index_path
    for f in retriever.index_path.iterdir():
        if f.name.startswith("segments"):
            f.write_bytes(b"garbage")
    rebuilt = make_retriever("lucene", passages, cache_dir=cache)
    assert rebuilt.search(["violin bow"], 1)[0][0].passage.id == "p6"


def test_pickle_reopens_the_index(built):
    retriever, _ = built
    clone = pickle.loads(pickle.dumps(retriever))
    assert clone.search(["Everest"], 2) == retriever.search(["Everest"], 2)


def test_cli_index_then_search_by_path(corpus_file, tmp_path):
    from toolgym.envs.retrieval.cli import main

    out = tmp_path / "index"
    assert main(["index", str(corpus_file), "--out", str(out)]) == 0
    retriever = make_retriever("lucene", index_path=out)
    (hits,) = retriever.search(["capital of Italy"], 1)
    # Passages come back from the stored raw documents, title split from contents.
    assert (hits[0].passage.id, hits[0].passage.title) == ("p1", "Rome")
    assert hits[0].passage.text.startswith("Rome is the capital city")
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["index", str(corpus_file), "--out", str(out)])


def test_missing_index_path_says_how_to_build_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="toolgym index"):
        make_retriever("lucene", index_path=tmp_path / "nope")


def test_serve_retriever_over_a_lucene_index(corpus_file, tmp_path):
    from toolgym.envs.retrieval.cli import main
    from toolgym.envs.retrieval.http import HTTPRetriever

    out = tmp_path / "index"
    main(["index", str(corpus_file), "--out", str(out)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolgym.envs.retrieval.cli", "serve-retriever", "--backend", "lucene",
         "--index", str(out), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = HTTPRetriever(f"http://127.0.0.1:{port}")
        assert client.wait_until_ready(timeout=120)["backend"] == "lucene"
        assert client.search(["highest mountain"], 1)[0][0].passage.title == "Mount Everest"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_relative_paths_follow_the_python_working_directory(built, tmp_path, monkeypatch):
    """The JVM (already started by ``built``) keeps the directory it started in; relative paths
    must mean what they mean to Python after a chdir, as in `toolgym index ... --out indexes/wiki`."""
    from toolgym.envs.retrieval.lucene import build_lucene_index

    from .conftest import PASSAGES

    monkeypatch.chdir(tmp_path)
    build_lucene_index(((p.id, p.contents) for p in PASSAGES), "indexes/wiki")
    assert list((tmp_path / "indexes" / "wiki").glob("segments_*"))
    retriever = make_retriever("lucene", index_path="indexes/wiki")
    query, expected = QUERIES[0]
    assert retriever.search([query], 1)[0][0].passage.id == expected
