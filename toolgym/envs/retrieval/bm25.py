"""bm25s in-process: the embedded default backend."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from toolgym.envs.retrieval.base import Hit, Passage
from toolgym.envs.retrieval.cache import (  # noqa: F401 - re-exported: the original home of these names
    corpus_fingerprint,
    default_cache_dir,
    discard,
    write_atomically,
)

logger = logging.getLogger(__name__)

_CHUNK = 20_000  # passages tokenised at a time while indexing (fits local offsets in uint16)
_TOKENISE = 1_000  # passages whose words are held as Python strings at once while indexing
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's (and scikit-learn's) token pattern
_EXHAUSTIVE = 50_000  # queries with fewer postings than this are scored exhaustively: pruning would not pay
_SLACK = 1e-5  # relative margin on pruning bounds: float32 sums in another order differ in the last bits
_QUERY_CACHE = 100_000  # words whose term id is remembered between queries (cleared when full)


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values: ``np.unique`` by sorting (numpy 2's hash-based unique is ~10x slower here)."""
    values = np.sort(values)
    return values[np.concatenate(([True], values[1:] != values[:-1]))] if values.size else values


class BM25Retriever:
    """BM25 (Lucene variant, English stopwords, Snowball stemming) over a list of passages.

    The index is built once per corpus. With ``cache=True`` it is stored under
    ``default_cache_dir()/bm25/<content hash>`` and the next process loads it instead of
    rebuilding; a cache that fails to load or does not match the corpus is rebuilt.

    >>> r = BM25Retriever([Passage("1", "Paris", "Paris is the capital of France."),
    ...                    Passage("2", "Rome", "Rome is the capital of Italy.")], cache=False)
    >>> [h.passage.title for h in r.search(["capital of Italy"], k=1)[0]]
    ['Rome']
    """

    thread_safe = True  # per-thread stemmers and score buffers: the server calls it from any thread

    def __init__(
        self,
        passages: Sequence[Passage],
        *,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        k1: float = 0.9,
        b: float = 0.4,
    ):
        if len(passages) == 0:
            raise ValueError("BM25Retriever needs at least one passage, got an empty corpus.")
        self.passages = list(passages)
        self.params = {"k1": k1, "b": b}
        self.fingerprint = corpus_fingerprint(self.passages)
        key = f"{self.fingerprint}-k1{k1}-b{b}"
        self.cache_path = Path(cache_dir or default_cache_dir()) / "bm25" / key if cache else None
        self._init_engine()
        index = self._load() if self.cache_path is not None else None
        if index is None:
            index = self._build()
            self._index = index
            if self.cache_path is not None:
                self._save()
        self._set_index(index)

    def _init_engine(self) -> None:
        import bm25s  # about 1 s to import (scipy): only a built retriever pays for it
        import Stemmer
        from bm25s.stopwords import STOPWORDS_EN

        self._bm25s = bm25s
        self._stemmer_cls = Stemmer.Stemmer
        self._stopwords = frozenset(STOPWORDS_EN)
        self._query_ids: dict[str, int] = {}  # word -> term id, -1 for stopwords and unknown words

    # -- pickling: the stemmers (C objects) and the module are recreated, not pickled ------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_bm25s", "_stemmer_cls", "_stopwords", "_query_ids", "_threads"):
            state.pop(name, None)
        if self.cache_path is not None and self.cache_path.is_dir():
            del state["_index"], state["_vocab"], state["_max_score"]  # the receiver loads the cache
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_engine()
        if "_index" not in state:
            self._index = self._load() or self._build()
            self._set_index(self._index)

    def _set_index(self, index) -> None:
        self._index = index
        self._vocab = index.vocab_dict
        matrix = index.scores
        # Each term's best score in any document: the bound that lets a query skip a term's postings.
        self._max_score = np.maximum.reduceat(matrix["data"], matrix["indptr"][:-1]).astype(np.float64)

    # -- tokenising: bm25s.tokenize's rules, without its per-call overhead -------------------
    def tokenize(self, text: str) -> list[str]:
        """Lower-case, bm25s's token pattern, bm25s's English stopwords, Snowball English stems.

        Equal to ``bm25s.tokenize([text], stopwords="en", stemmer=Stemmer("english"),
        return_ids=False)[0]`` (tested), which costs ~0.2 ms a call in progress-bar setup alone.
        """
        stem = self._local().stemmer.stemWord
        return [stem(w) for w in _TOKEN.findall(text.lower()) if w not in self._stopwords]

    def _query_term_ids(self, text: str) -> list[int]:
        """The query's term ids in query order (repeats kept, as bm25s scores them); unknown words dropped."""
        cache = self._query_ids
        ids = []
        for word in _TOKEN.findall(text.lower()):
            tid = cache.get(word)
            if tid is None:
                if word in self._stopwords:
                    tid = -1
                else:
                    tid = self._vocab.get(self._local().stemmer.stemWord(word), -1)
                if len(cache) >= _QUERY_CACHE:
                    cache.clear()
                cache[word] = tid  # a dict store is atomic under the GIL: threads may share the cache
            if tid >= 0:
                ids.append(tid)
        return ids

    # -- building and caching -------------------------------------------------------------
    def _build(self):
        """Index in chunks, straight into bm25s's CSC layout (scores precomputed per term and document).

        ``bm25s.BM25.index`` holds every token of the corpus as a Python int at once (about 4 GB
        for 1M passages of 100 words); this keeps 3 bytes per posting while tokenising (the
        document offset in its chunk and the term count; term ids once per chunk and term) and
        writes the same scores as bm25s (tested against it).
        """
        n = len(self.passages)
        vocab: dict[str, int] = {}
        stemmer, stopwords = self._local().stemmer, self._stopwords

        class WordIds(dict):  # word -> term id, filled on first sight: one dict lookup per token after that
            def __missing__(self, word: str) -> int:
                tid = -1 if word in stopwords else vocab.setdefault(stemmer.stemWord(word), len(vocab))
                self[word] = tid
                return tid

        word_ids = WordIds()
        doc_len = np.zeros(n, dtype=np.float32)
        chunks = []  # per chunk: (start, term ids present, postings per term, local doc offsets, counts)
        for start in range(0, n, _CHUNK):
            sizes, terms = [], []
            end = min(start + _CHUNK, n)
            for sub in range(start, end, _TOKENISE):  # few word strings alive at once
                words = [_TOKEN.findall(p.contents.lower()) for p in self.passages[sub:min(sub + _TOKENISE, end)]]
                sizes.append(np.fromiter(map(len, words), dtype=np.int64, count=len(words)))
                terms.append(np.fromiter(map(word_ids.__getitem__, chain.from_iterable(words)), dtype=np.int64,
                                         count=int(sizes[-1].sum())))
            sizes, terms = np.concatenate(sizes), np.concatenate(terms)
            local = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
            kept = terms >= 0
            terms, local = terms[kept], local[kept]
            doc_len[start:start + len(sizes)] = np.bincount(local, minlength=len(sizes))
            keys, counts = np.unique(terms * _CHUNK + local, return_counts=True)  # sorted by term, then doc
            uterms, per_term = np.unique(keys // _CHUNK, return_counts=True)
            count_type = np.uint8 if counts.max(initial=0) < 256 else np.uint32
            chunks.append((start, uterms.astype(np.int32), per_term.astype(np.int32),
                           (keys % _CHUNK).astype(np.uint16), counts.astype(count_type)))
        del word_ids
        n_vocab = len(vocab)
        df = np.zeros(n_vocab, dtype=np.int64)
        for _, uterms, per_term, _, _ in chunks:
            df[uterms] += per_term
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)  # Lucene's idf, as bm25s "lucene"
        avg_len = float(doc_len.mean()) or 1.0
        k1, b = self.params["k1"], self.params["b"]
        norm = (k1 * ((1 - b) + b * doc_len / avg_len)).astype(np.float32)
        indptr = np.concatenate([[0], np.cumsum(df)])
        data = np.empty(int(indptr[-1]), dtype=np.float32)
        indices = np.empty(int(indptr[-1]), dtype=np.int32)
        fill = indptr[:-1].copy()
        while chunks:  # counting sort into term-major order; each chunk is freed once placed
            start, uterms, per_term, local, counts = chunks.pop(0)
            terms = np.repeat(uterms, per_term)
            rank = np.arange(len(terms)) - np.repeat(np.cumsum(per_term) - per_term, per_term)
            pos = fill[terms] + rank
            docs = local.astype(np.int32) + start
            tf = counts.astype(np.float32)
            indices[pos] = docs
            data[pos] = idf[terms] * tf / (tf + norm[docs])
            fill[uterms] += per_term
        index = self._bm25s.BM25(**self.params)
        index.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n}
        index.vocab_dict = vocab
        index.nonoccurrence_array = None  # only BM25L/BM25+ use it
        return index

    def _save(self) -> None:
        assert self.cache_path is not None

        def write(tmp: Path) -> None:
            self._index.save(str(tmp), show_progress=False)
            (tmp / "toolgym.json").write_text(json.dumps({"n_passages": len(self.passages)}))

        write_atomically(self.cache_path, write)

    def _load(self):
        path = self.cache_path
        if path is None or not path.is_dir():
            return None
        try:
            meta = json.loads((path / "toolgym.json").read_text())
            index = self._bm25s.BM25.load(str(path), show_progress=False, verbosity=0)
            if meta["n_passages"] != len(self.passages) or index.scores["num_docs"] != len(self.passages):
                raise ValueError("passage count differs from the corpus")
            return index
        except Exception as err:  # noqa: BLE001 - any unreadable cache is rebuilt, not trusted
            discard(path, err)
            return None

    # -- searching ------------------------------------------------------------------------
    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if not queries:
            return []
        k = max(1, min(int(k), len(self.passages)))
        results = []
        for query in queries:
            # Words the corpus never saw score nothing; a query left empty gets no hits.
            ids = self._query_term_ids(query)
            docs, scores = self._top_k(ids, k) if ids else ((), ())
            results.append([Hit(self.passages[int(d)], float(s)) for d, s in zip(docs, scores) if s > 0])
        return results

    def _top_k(self, token_ids: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best documents by the sum of the query terms' precomputed BM25 scores.

        The result equals scoring every posting of every query term (bm25s's scores; ties broken by
        document position), but large queries skip most postings (MaxScore, term at a time): terms
        are read rarest first, and the most frequent terms whose best scores add up to less than a
        proven lower bound of the k-th best score are never read: a document absent from every
        term read cannot reach the top k. The skipped terms are then only looked up (binary search
        in their document-sorted postings) for the candidates that still can.
        """
        matrix = self._index.scores
        indptr, indices, data = matrix["indptr"], matrix["indices"], matrix["data"]
        terms = np.asarray(token_ids, dtype=np.int64)
        lengths = indptr[terms + 1] - indptr[terms]
        if int(lengths.sum()) <= _EXHAUSTIVE:
            return self._exhaustive(terms, k)
        bound = self._max_score[terms]  # per query term: the most it adds to any document's score
        unread = sorted(range(len(terms)), key=lambda i: lengths[i])  # rarest first
        acc = self._accumulator()
        read: list[np.ndarray] = []  # the postings read so far, per term
        threshold, fresh = 0.0, True  # a lower bound of the k-th best score; is it up to date?
        try:
            while True:
                skip, skipped = set(), 0.0  # the most frequent terms that cannot lift a document to the bound
                for i in reversed(unread):
                    if skipped + bound[i] < threshold * (1 - _SLACK):
                        skip.add(i)
                        skipped += bound[i]
                needed = [i for i in unread if i not in skip]
                if not needed:
                    break
                i = needed[0]
                if not fresh and lengths[i] > _EXHAUSTIVE // 4:  # before a long list, tighten the bound
                    threshold, fresh = self._kth_score(read, terms[unread], k), True
                    continue
                s, e = indptr[terms[i]], indptr[terms[i] + 1]
                acc[indices[s:e]] += data[s:e]  # a term's postings hold each document once: += is exact
                read.append(indices[s:e])
                unread.remove(i)
                fresh = False
            docs = np.concatenate(read)
            # Only documents whose best case still reaches the bound stay candidates; filtering the
            # postings before de-duplicating keeps the sort small.
            candidates = _distinct(docs[acc[docs] + skipped >= threshold * (1 - _SLACK)])
            partial = acc[candidates].astype(np.float64)
        finally:
            for docs in read:  # reset only what was touched: the buffer is reused by the next query
                acc[docs] = 0.0
        unread.sort(key=lambda i: -bound[i])  # the skipped terms, most pruning power first
        for i in unread:
            skipped -= bound[i]
            partial += self._lookup(terms[i], candidates)
            keep = partial + skipped >= threshold * (1 - _SLACK)
            candidates, partial = candidates[keep], partial[keep]
        if candidates.size > k:  # ``partial`` is now each candidate's full score, up to float rounding
            kth = np.partition(partial, candidates.size - k)[candidates.size - k]
            candidates = candidates[partial >= kth * (1 - _SLACK)]
        scores = np.zeros(len(candidates), dtype=np.float32)
        for t in terms:  # summed in query order, as the exhaustive scorer does: the same float32 bits
            scores += self._lookup(t, candidates)
        best = np.lexsort((candidates, -scores))[:k]  # best first; ties by position, as bm25s
        return candidates[best], scores[best]

    def _kth_score(self, read: list[np.ndarray], unread: np.ndarray, k: int) -> float:
        """A lower bound of the k-th best score: the k-th best full score of the best partial scorers."""
        acc = self._accumulator()
        docs = np.concatenate(read)
        m = min(docs.size, k * len(read))  # a document appears once per term: these hold >= k documents
        best = _distinct(docs[np.argpartition(-acc[docs], m - 1)[:m]] if m < docs.size else docs)
        if best.size < k:
            return 0.0
        full = acc[best].astype(np.float64)
        for t in unread:
            full += self._lookup(t, best)
        return float(np.partition(full, best.size - k)[best.size - k])

    def _lookup(self, term: int, docs: np.ndarray) -> np.ndarray:
        """The term's score in each of ``docs`` (sorted), 0 where it does not occur."""
        matrix = self._index.scores
        s, e = matrix["indptr"][term], matrix["indptr"][term + 1]
        column = matrix["indices"][s:e]
        if docs.size * 3 > e - s:  # many documents: one pass over the postings beats binary searches
            scratch = self._accumulator("scratch")  # not the scores: a lookup may run mid-query
            scratch[column] = matrix["data"][s:e]
            found = scratch[docs]
            scratch[column] = 0.0
            return found
        pos = np.minimum(np.searchsorted(column, docs), e - s - 1)
        return np.where(column[pos] == docs, matrix["data"][s:e][pos], np.float32(0))

    def _exhaustive(self, terms: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Sum the query terms' score columns over all their postings (fastest for short lists)."""
        matrix = self._index.scores
        data, indices, indptr = matrix["data"], matrix["indices"], matrix["indptr"]
        spans = [(indptr[t], indptr[t + 1]) for t in terms]
        docs = np.concatenate([indices[s:e] for s, e in spans])
        if docs.size == 0:
            return docs, np.zeros(0, np.float32)
        acc = self._accumulator()
        for s, e in spans:  # a term's postings hold each document once: fancy-index += is exact
            acc[indices[s:e]] += data[s:e]
        # A document appears at most once per term, so the best k * n_terms postings hold the top k.
        m = min(docs.size, k * len(spans))
        best = np.argpartition(-acc[docs], m - 1)[:m] if m < docs.size else slice(None)
        top = _distinct(docs[best])
        scores = acc[top]
        acc[docs] = 0.0  # reset only what was touched: the buffer is reused by the next query
        order = np.lexsort((top, -scores))[:k]  # best first; ties by position, as bm25s
        return top[order], scores[order]

    def _local(self) -> threading.local:
        """Per-thread state: PyStemmer objects are not thread-safe, and the score buffer is reused."""
        local = self.__dict__.get("_threads")
        if local is None:
            local = self.__dict__.setdefault("_threads", threading.local())
        if not hasattr(local, "stemmer"):
            local.stemmer = self._stemmer_cls("english")
        return local

    def _accumulator(self, name: str = "acc") -> np.ndarray:
        """A zeroed float32 buffer of the corpus size, one per thread and name, reset after each use."""
        local = self._local()
        buffer = getattr(local, name, None)
        if buffer is None:
            buffer = np.zeros(len(self.passages), dtype=np.float32)
            setattr(local, name, buffer)
        return buffer

    def __len__(self) -> int:
        return len(self.passages)
