"""The retrieval server under normal and hostile load: the stdlib server against FastAPI/uvicorn.

    python perf/retrieval_server.py                     # 100k passages, both servers
    python perf/retrieval_server.py --size 10k --servers stdlib

Each server runs in its own process over the same bm25 index of the synthetic corpus of
``perf/retrieval.py`` (passages of ~100 words) with the default ``ServerLimits``:

- ``stdlib``: ``toolgym serve-retriever`` itself (``ThreadingHTTPServer``, the shipped server);
- ``fastapi``: the same endpoint on FastAPI + uvicorn (what Search-R1's server uses), written
  below with the same request validation (``parse_request``), the same limits, searches in
  uvicorn's thread pool and ``--limit-concurrency`` for the queue.

Columns: p50/p99 = single-query latency (ms, k=3, one client, keep-alive); batch q/s = queries
per second answering batches of 256 (k=3); conc req/s = single-query requests per second from 8
concurrent clients; idle = RSS after start-up and a warm-up (MB); burst +MB = peak RSS
(``VmHWM``) above idle during a hostile burst; burst 4xx/503/200 = answers to the burst;
normal p50/max = latency of a normal client's single query during the burst (ms).

The burst: 16 clients x 12 requests, each one of: the request that grew the old server past
9.4 GB (10,000 queries at topk 1000), a query of 30,000 words, JSON nested 100,000 deep,
``Content-Length: -1``, a body over the size limit, and the largest request the limits accept
(4,096 queries at topk 4: 16,384 hits, about 25 MB of JSON to answer).
"""


import argparse
import importlib.util
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _perf_retrieval():
    """perf/retrieval.py, for its synthetic corpus and queries (one generator for every script)."""
    spec = importlib.util.spec_from_file_location("perf_retrieval", ROOT / "perf" / "retrieval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the FastAPI variant, run in its own process ---------------------------------------------------
def serve_fastapi(corpus: Path, port: int) -> None:
    import uvicorn
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    from toolgym.envs.retrieval.cli import build_served_retriever
    from toolgym.envs.retrieval.server import BadRequest, ServerLimits, flag, hit_document, parse_request

    limits = ServerLimits()
    retriever = build_served_retriever("bm25", corpus)
    app = FastAPI()

    @app.get("/health")
    def health():
        return {"status": "ok", "backend": "bm25", "passages": len(retriever)}

    @app.post("/retrieve")
    async def retrieve(request: Request):
        raw = request.headers.get("content-length")
        if raw is None or not raw.strip().isdigit():
            return JSONResponse({"error": "Content-Length: expected a byte count"}, status_code=411)
        if int(raw) > limits.max_body_bytes:
            return JSONResponse({"error": f"body: {int(raw):,} bytes, the limit is {limits.max_body_bytes:,} "
                                          f"({flag('max_body_bytes')})"}, status_code=413)
        try:
            queries, topk, scores = parse_request(await request.body(), 3, limits)
        except BadRequest as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
        found = await run_in_threadpool(retriever.search, queries, topk)
        if scores:
            return {"result": [[{"document": hit_document(h), "score": h.score} for h in hits] for hits in found]}
        return {"result": [[hit_document(h) for h in hits] for hits in found]}

    print(f"serving at http://127.0.0.1:{port}/retrieve", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning",
                limit_concurrency=limits.max_inflight + limits.max_pending, timeout_keep_alive=120)


# -- the driver ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(kind: str, corpus: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    if kind == "stdlib":
        command = [sys.executable, "-m", "toolgym.cli", "serve-retriever", "--corpus", str(corpus), "--port", str(port)]
    else:
        command = [sys.executable, __file__, "--serve-fastapi", str(corpus), "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from toolgym.envs.retrieval.http import HTTPRetriever

    url = f"http://127.0.0.1:{port}/retrieve"
    HTTPRetriever(url).wait_until_ready(timeout=600)
    return proc, url


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _raw(port: int, request: bytes) -> int:
    """Send a request as raw bytes; the HTTP status of the answer (0 when the connection dropped)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=300) as conn:
            conn.sendall(request)
            head = b""
            while b"\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return 0
                head += chunk
            status = int(head.split()[1])
            while conn.recv(1 << 20):  # read the whole answer: the server pays for writing it
                pass
            return status
    except OSError:
        return 0


def _post(payload: bytes, length: str | None = None) -> bytes:
    size = len(payload) if length is None else length
    return (f"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\nConnection: close\r\n\r\n").encode() + payload


def hostile_requests(queries: list[str]) -> list[bytes]:
    dumps = lambda payload: json.dumps(payload).encode()  # noqa: E731
    return [
        _post(dumps({"queries": ["who founded the city"] * 10_000, "topk": 1000})),
        _post(dumps({"queries": [" ".join(queries) * 1 + " word" * 30_000]})),
        _post(b"[" * 100_000),
        _post(b'{"queries": ["x"]}' + b" " * 100_000, length="-1"),
        _post(b"", length=str(64 << 20)),
        _post(dumps({"queries": (queries * 100)[:4096], "topk": 4})),  # the largest accepted
    ]


def measure(kind: str, corpus: Path, queries: list[str]) -> dict:
    import requests

    proc, url = _start(kind, corpus)
    port = int(url.split(":")[2].split("/")[0])
    row = {"server": kind}
    try:
        session = requests.Session()
        for q in queries[:50]:  # warm-up
            session.post(url, json={"queries": [q], "topk": 3}, timeout=60)
        times = []
        for q in queries[:300]:
            start = time.perf_counter()
            session.post(url, json={"queries": [q], "topk": 3, "return_scores": True}, timeout=60).raise_for_status()
            times.append(time.perf_counter() - start)
        times.sort()
        row["p50 ms"] = 1000 * statistics.median(times)
        row["p99 ms"] = 1000 * times[int(0.99 * (len(times) - 1))]
        start = time.perf_counter()
        for i in range(0, 256 * 8, 256):
            session.post(url, json={"queries": (queries * 8)[i:i + 256], "topk": 3}, timeout=120).raise_for_status()
        row["batch q/s"] = 256 * 8 / (time.perf_counter() - start)

        def client(n: int):
            s = requests.Session()
            for q in queries[:n]:
                s.post(url, json={"queries": [q], "topk": 3}, timeout=60).raise_for_status()

        threads = [threading.Thread(target=client, args=(100,)) for _ in range(8)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        row["conc req/s"] = 800 / (time.perf_counter() - start)

        idle = _status_kb(proc.pid, "VmRSS")
        # VmHWM is the peak since start; reset it so that it measures the burst only.
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")
        statuses: list[int] = []
        normal: list[float] = []
        stop = threading.Event()

        def normal_client():
            s = requests.Session()
            i = 0
            while not stop.is_set():
                start = time.perf_counter()
                response = s.post(url, json={"queries": [queries[i % len(queries)]], "topk": 3}, timeout=300)
                if response.ok:
                    normal.append(time.perf_counter() - start)
                i += 1

        def attacker(k: int):
            batch = hostile_requests(queries[:20])
            for j in range(12):
                statuses.append(_raw(port, batch[(j + k) % len(batch)]))

        watcher = threading.Thread(target=normal_client)
        watcher.start()
        attackers = [threading.Thread(target=attacker, args=(k,)) for k in range(16)]
        for t in attackers:
            t.start()
        for t in attackers:
            t.join()
        stop.set()
        watcher.join()
        peak = _status_kb(proc.pid, "VmHWM")
        row["idle MB"] = idle / 1024
        row["burst +MB"] = (peak - idle) / 1024
        row["burst 4xx/503/200"] = (f"{sum(400 <= s < 500 for s in statuses)}/{statuses.count(503)}/"
                                    f"{statuses.count(200)}" + (f" ({statuses.count(0)} dropped)" if 0 in statuses else ""))
        normal.sort()
        row["normal p50 ms"] = 1000 * statistics.median(normal) if normal else float("nan")
        row["normal max ms"] = 1000 * normal[-1] if normal else float("nan")
    finally:
        proc.terminate()
        proc.wait(30)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="100k", help="passages in the corpus (1k, 10k, 100k)")
    parser.add_argument("--servers", default="stdlib,fastapi")
    parser.add_argument("--serve-fastapi", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=8000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fastapi:
        serve_fastapi(args.serve_fastapi, args.port)
        return
    bench = _perf_retrieval()
    n = bench.parse_size(args.size)
    corpus = bench.corpus_file(n)
    queries, _ = bench.synthetic_queries(bench.read_passages(n), 400)
    rows = [measure(kind, corpus, queries) for kind in args.servers.split(",")]
    columns = list(rows[0])
    print(f"\n{bench.fmt_size(n)} passages, default ServerLimits, bm25\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(f"{row[c]:.1f}" if isinstance(row[c], float) else str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
