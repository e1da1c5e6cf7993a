"""Retrieval backends behind one batched interface, ``search(queries, k)``."""

from toolgym.envs.retrieval.base import Hit, Passage, Retriever
from toolgym.envs.retrieval.bm25 import BM25Retriever

__all__ = ["BM25Retriever", "Hit", "Passage", "Retriever"]
