"""``make_retriever``: one entry point for every backend, by name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolgym.envs.errors import unknown_name_error
from toolgym.envs.retrieval.base import Passage, Retriever
from toolgym.envs.retrieval.bm25 import BM25Retriever
from toolgym.envs.retrieval.dense import DenseRetriever
from toolgym.envs.retrieval.http import HTTPRetriever
from toolgym.envs.retrieval.lucene import LuceneRetriever

BACKENDS = ("bm25", "lucene", "dense", "http")


def make_retriever(
    backend: str = "bm25",
    passages: Sequence[Passage] | None = None,
    *,
    index_path: str | Path | None = None,
    url: str | None = None,
    **options: Any,
) -> Retriever:
    """Build a retriever by backend name.

    - ``"bm25"`` (default): bm25s in-process over ``passages``.
    - ``"lucene"``: pyserini over ``passages`` (indexed once, cached) or an existing index at ``index_path``.
    - ``"dense"``: sentence-transformers + faiss over ``passages`` (``model=`` a hub id or a local path).
    - ``"http"``: a client of a Search-R1 ``/retrieve`` server at ``url`` (``passages`` are ignored:
      the server holds the corpus).

    ``options`` go to the backend's constructor (e.g. ``k1``, ``b``, ``cache``, ``timeout``).
    """
    name = str(backend).lower()
    if name not in BACKENDS:
        raise unknown_name_error("retrieval backend", backend, BACKENDS)
    if name == "http":
        if url is None:
            raise ValueError("The http backend needs url=, e.g. url='http://127.0.0.1:8000/retrieve'.")
        # passages are accepted and unused: the server holds the corpus, the env keeps its copy.
        _refuse(name, index_path=index_path)
        return HTTPRetriever(url, **options)
    _refuse(name, url=url)
    if name == "lucene":
        return LuceneRetriever(passages, index_path=index_path, **options)
    _refuse(name, index_path=index_path)
    if passages is None:
        raise ValueError(f"The {name} backend needs passages (a list of Passage); got none.")
    if name == "dense":
        return DenseRetriever(passages, **options)
    return BM25Retriever(passages, **options)


def _refuse(backend: str, **given: Any) -> None:
    """Name an argument that the backend would silently ignore."""
    for arg, value in given.items():
        if value is not None:
            raise ValueError(f"The {backend} backend does not take {arg}= (got {value!r}).")
