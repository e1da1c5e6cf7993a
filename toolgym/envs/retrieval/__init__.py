"""Retrieval backends behind one batched interface, ``search(queries, k)``.

``make_retriever("bm25" | "lucene" | "dense" | "http", passages, ...)`` builds any of them; the heavy
backends import their dependencies only when built.
"""

from toolgym.envs.retrieval.base import Hit, Passage, Retriever
from toolgym.envs.retrieval.bm25 import BM25Retriever
from toolgym.envs.retrieval.factory import BACKENDS, make_retriever

__all__ = ["BACKENDS", "BM25Retriever", "Hit", "Passage", "Retriever", "make_retriever"]
