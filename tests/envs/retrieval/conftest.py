"""A small corpus where each query has one clearly right passage, shared by every backend's tests."""

from __future__ import annotations

import json

import pytest

from toolgym.envs.retrieval import Passage

PASSAGES = [
    Passage("p0", "Paris", "Paris is the capital and most populous city of France."),
    Passage("p1", "Rome", "Rome is the capital city of Italy, founded on seven hills."),
    Passage("p2", "Berlin", "Berlin is the capital of Germany and its largest city."),
    Passage("p3", "Danube", "The Danube is a river that flows through ten countries to the Black Sea."),
    Passage("p4", "Photosynthesis", "Photosynthesis converts sunlight, water and carbon dioxide into sugar in plants."),
    Passage("p5", "Mount Everest", "Mount Everest is the highest mountain above sea level, in the Himalayas."),
    Passage("p6", "Violin", "The violin is a wooden string instrument played with a bow."),
    Passage("p7", "Tokyo", "Tokyo is the capital of Japan and a very large metropolitan area."),
]
# (query, id of the passage that must rank first)
QUERIES = [
    ("capital of Italy", "p1"),
    ("which river flows to the Black Sea", "p3"),
    ("how do plants make sugar from sunlight", "p4"),
    ("highest mountain in the Himalayas", "p5"),
    ("string instrument played with a bow", "p6"),
]


@pytest.fixture
def passages() -> list[Passage]:
    return list(PASSAGES)


@pytest.fixture
def corpus_file(tmp_path):
    """The corpus as JSONL in the {id, title, text} layout."""
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"id": p.id, "title": p.title, "text": p.text}) + "\n" for p in PASSAGES))
    return path


@pytest.fixture
def local(passages):
    """An in-process BM25 retriever over ``passages``: what the server serves."""
    from toolgym.envs.retrieval import BM25Retriever

    return BM25Retriever(passages, cache=False)


@pytest.fixture
def server(local):
    """A retrieval server on a free loopback port, serving ``local``; closed after the test."""
    from toolgym.envs.retrieval.server import RetrievalServer

    srv = RetrievalServer(local, "127.0.0.1", 0, backend="bm25")
    srv.start_in_thread()
    yield srv
    srv.close()
