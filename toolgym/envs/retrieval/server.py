"""Serve any retriever over HTTP with Search-R1's ``/retrieve`` schema (``toolgym serve-retriever``).

- ``POST /retrieve`` ``{"queries": [str, ...], "topk": int, "return_scores": bool}`` ->
  ``{"result": [[{"document": {"id", "contents", "title", "text"}, "score"}, ...], ...]}``
  (without ``return_scores``: lists of bare documents, as Search-R1's server does).
- ``GET /health`` -> ``{"status": "ok", "backend": ..., "passages": n}``.

A malformed request gets a 400 whose JSON ``error`` names the field; a request over a limit of
``ServerLimits`` gets a 4xx whose ``error`` names the limit, the value seen and the flag that sets
it (413 for sizes, 411 without a Content-Length), before the server searches or allocates for it.
At most ``max_inflight`` requests are read and answered at once and ``max_pending`` more wait
for a turn holding nothing but their socket; beyond that a request gets 503 with ``Retry-After``
(the http client retries it), so a burst costs latency, never memory.

The stdlib ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive: no dependency, as much memory and
throughput as FastAPI/uvicorn for this one endpoint, and a normal client's latency during a
hostile burst several times lower (``perf/retrieval_server.py`` measures both; docs/retrieval.md).
Searches run on one worker thread (the JVM via pyjnius and torch are not safe to call from many
short-lived handler threads) unless the retriever says ``thread_safe = True`` (bm25: per-thread
stemmers and buffers), which is then called directly.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from toolgym.envs.retrieval.base import Hit, Retriever

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerLimits:
    """What one request, and the server as a whole, may use; each field is a flag of
    ``toolgym serve-retriever`` (``max_queries`` is ``--max-queries``). The defaults take a
    trainer's batch of 4,096 queries at topk 3 and keep the server under 500 MB above idle under
    a hostile burst (measured by ``perf/retrieval_server.py``)."""

    max_body_bytes: int = field(default=4 << 20, metadata={"help": "bytes of one request body"})
    max_queries: int = field(default=4096, metadata={"help": "queries in one request"})
    max_query_chars: int = field(default=1000, metadata={"help": "characters of one query (its cost grows with its terms)"})
    max_topk: int = field(default=1000, metadata={"help": "topk of one request"})
    max_hits: int = field(default=20_000, metadata={"help": "queries x topk of one request: the size of the answer"})
    max_json_depth: int = field(default=8, metadata={"help": "nesting of the request's JSON (the schema needs 2)"})
    max_inflight: int = field(default=4, metadata={"help": "requests read, searched and answered at once"})
    max_pending: int = field(default=64, metadata={"help": "requests waiting for a turn; more get 503 and retry"})
    max_connections: int = field(default=256, metadata={"help": "open connections; more are answered 503 and closed"})
    body_seconds: float = field(default=30.0, metadata={"help": "seconds to receive a request body once its turn came"})
    idle_seconds: float = field(default=120.0, metadata={"help": "seconds a kept-alive connection may stay idle"})

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"ServerLimits.{f.name} ({flag(f.name)}) must be a positive number, got {value!r}.")


def flag(name: str) -> str:
    """The command-line flag of a ``ServerLimits`` field: ``max_queries`` -> ``--max-queries``."""
    return "--" + name.replace("_", "-")


class BadRequest(ValueError):
    """A request that does not follow the schema or exceeds a limit; the message names the field
    or the limit. ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _over(what: str, value: int, limit_name: str, limit: int) -> BadRequest:
    return BadRequest(f"{what}: {value:,}, the limit is {limit:,} ({flag(limit_name)})", status=413)


# A JSON string (escapes included): removed before counting brackets, so "[" in a query is not nesting.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BYTE_COUNT = re.compile(r"[0-9]+")
_OPEN, _CLOSE = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


def json_depth(body: bytes) -> int:
    """How deeply ``body`` nests arrays and objects, counted in linear time without parsing
    (``json.loads`` recurses and raises RecursionError on deep nesting)."""
    skeleton = np.frombuffer(_JSON_STRING.sub(b"", body), np.uint8)
    steps = np.isin(skeleton, _OPEN).astype(np.int64) - np.isin(skeleton, _CLOSE)
    return int(np.cumsum(steps).max(initial=0))


def parse_request(body: bytes, default_topk: int, limits: ServerLimits = ServerLimits()) -> tuple[list[str], int, bool]:
    """Validate a ``/retrieve`` body: (queries, topk, return_scores), or BadRequest naming the
    field or the limit."""
    depth = json_depth(body)
    if depth > limits.max_json_depth:
        raise _over("body: JSON nesting depth", depth, "max_json_depth", limits.max_json_depth)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise BadRequest(f"body: not valid JSON ({err})") from None
    if not isinstance(payload, dict):
        raise BadRequest(f"body: expected a JSON object, got {type(payload).__name__}")
    queries = payload.get("queries")
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise BadRequest(f"queries: expected a list of strings, got {json.dumps(queries)[:100]}")
    if len(queries) > limits.max_queries:
        raise _over("queries: the number of queries", len(queries), "max_queries", limits.max_queries)
    longest = max(range(len(queries)), key=lambda i: len(queries[i]), default=None)
    if longest is not None and len(queries[longest]) > limits.max_query_chars:
        raise _over(f"queries[{longest}]: characters", len(queries[longest]), "max_query_chars", limits.max_query_chars)
    topk = payload.get("topk", default_topk)
    if topk is None:
        topk = default_topk
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= limits.max_topk:
        raise BadRequest(f"topk: expected an integer from 1 to {limits.max_topk} ({flag('max_topk')}), "
                         f"got {json.dumps(topk)[:50]}")
    if len(queries) * topk > limits.max_hits:
        raise _over(f"queries x topk: {len(queries):,} x {topk}, hits", len(queries) * topk, "max_hits", limits.max_hits)
    return_scores = payload.get("return_scores", False)
    if not isinstance(return_scores, bool):
        raise BadRequest(f"return_scores: expected true or false, got {json.dumps(return_scores)[:50]}")
    unknown = sorted(set(payload) - {"queries", "topk", "return_scores"})
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field; the fields are queries, topk, return_scores")
    return queries, topk, return_scores


def hit_document(hit: Hit) -> dict[str, str]:
    """A hit as the Search-R1 ``/retrieve`` answer writes its document: id, contents, title, text."""
    p = hit.passage
    return {"id": p.id, "contents": p.contents, "title": p.title, "text": p.text}


class _Gate:
    """At most ``slots`` holders at once and at most ``queue`` waiting; ``enter`` is False when
    the queue is full (the caller answers 503 rather than holding one more request)."""

    def __init__(self, slots: int, queue: int):
        self._cond = threading.Condition()
        self._free, self._waiting, self._queue = slots, 0, queue

    def enter(self) -> bool:
        with self._cond:
            if self._free == 0 and self._waiting >= self._queue:
                return False
            self._waiting += 1
            while self._free == 0:
                self._cond.wait()
            self._waiting -= 1
            self._free -= 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify()


class RetrievalServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that owns a retriever; ``close()`` also drops kept-alive connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, retriever: Retriever, host: str = "127.0.0.1", port: int = 8000, *,
                 backend: str = "", default_topk: int = 3, limits: ServerLimits = ServerLimits()):
        if not 1 <= default_topk <= limits.max_topk:
            raise ValueError(f"default_topk (--topk) must be in [1, {limits.max_topk}] (--max-topk), got {default_topk!r}.")
        self.retriever = retriever
        self.backend = backend or type(retriever).__name__
        self.default_topk = default_topk
        self.limits = limits
        self.gate = _Gate(limits.max_inflight, limits.max_pending)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retriever")
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/retrieve"

    def search(self, queries: list[str], k: int) -> list[list[Hit]]:
        if getattr(self.retriever, "thread_safe", False):  # bm25: skip the hop to the worker thread
            return self.retriever.search(queries, k)
        return self._worker.submit(self.retriever.search, queries, k).result()

    def process_request(self, request, client_address):
        with self._lock:
            full = len(self._connections) >= self.limits.max_connections
            if not full:
                self._connections.add(request)
        if full:  # answered here, without a thread: a flood of connections costs no memory
            _refuse_connection(request, self.limits.max_connections)
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close(self) -> None:
        """Stop serving, close the listening socket and every open connection (tests stop it mid-use)."""
        self.shutdown()
        self.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._worker.shutdown(wait=False)

    def start_in_thread(self, poll_interval: float = 0.05) -> threading.Thread:
        """Serve from a daemon thread (tests, notebooks); ``close()`` stops it within ``poll_interval``."""
        thread = threading.Thread(target=self.serve_forever, args=(poll_interval,), name="retrieval-server",
                                  daemon=True)
        thread.start()
        return thread


def _refuse_connection(request: socket.socket, limit: int) -> None:
    body = json.dumps({"error": f"connections: the server has {limit} open, the limit ({flag('max_connections')}); "
                                "retry later"}).encode()
    head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    try:
        request.settimeout(1.0)
        request.sendall(head + body)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses one connection for every query
    # Headers and body leave in two writes; with Nagle's algorithm the body then waits for the
    # client's delayed ACK: 40 ms per request on Linux loopback (measured) instead of 0.2 ms.
    disable_nagle_algorithm = True
    server: RetrievalServer

    def setup(self) -> None:
        self.timeout = self.server.limits.idle_seconds  # an idle kept-alive connection is closed after this
        super().setup()

    def _send(self, status: int, payload: Any, **headers: str) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "replace")  # lone surrogates -> "?"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: int, error: str, **headers: str) -> None:
        """Answer and close: the body was not read, so the connection cannot be reused."""
        self.close_connection = True
        self._send(status, {"error": error}, **headers)

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming
        if self.path.split("?")[0] == "/health":
            n = len(self.server.retriever) if hasattr(self.server.retriever, "__len__") else None
            self._send(200, {"status": "ok", "backend": self.server.backend, "passages": n})
        else:
            self._send(404, {"error": f"path: no GET {self.path}; endpoints: GET /health, POST /retrieve"})

    def do_POST(self) -> None:  # noqa: N802
        limits = self.server.limits
        if self.path.split("?")[0] != "/retrieve":
            self._refuse(404, f"path: no POST {self.path}; endpoints: GET /health, POST /retrieve")
            return
        raw = self.headers.get("Content-Length")
        if raw is None or self.headers.get("Transfer-Encoding"):
            self._refuse(411, "Content-Length: required (a chunked or unsized body is not read)")
            return
        if not _BYTE_COUNT.fullmatch(raw.strip()):  # "-1", "abc" or "²": never read to EOF
            self._refuse(400, f"Content-Length: expected a byte count, got {raw[:40]!r}")
            return
        length = int(raw)
        if length > limits.max_body_bytes:
            self._refuse(413, f"body: {length:,} bytes, the limit is {limits.max_body_bytes:,} ({flag('max_body_bytes')})")
            return
        # Wait for a turn before reading the body: a waiting request holds only its socket.
        if not self.server.gate.enter():
            self._refuse(503, f"busy: {limits.max_inflight} requests in flight and {limits.max_pending} waiting, "
                              f"the limits ({flag('max_inflight')}, {flag('max_pending')}); retry later", Retry_After="1")
            return
        try:
            self._answer(length, limits)
        finally:
            self.server.gate.leave()

    def _answer(self, length: int, limits: ServerLimits) -> None:
        self.connection.settimeout(limits.body_seconds)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self._refuse(408, f"body: not received within {limits.body_seconds:g} s ({flag('body_seconds')})")
            return
        finally:
            self.connection.settimeout(limits.idle_seconds)
        if len(body) < length:  # the client hung up mid-body
            self.close_connection = True
            return
        try:
            queries, topk, return_scores = parse_request(body, self.server.default_topk, limits)
        except BadRequest as err:
            self._send(err.status, {"error": str(err)})
            return
        del body
        try:
            found = self.server.search(queries, topk) if queries else []
        except Exception as err:  # noqa: BLE001 - the client gets the reason, the server stays up
            logger.exception("search failed")
            self._send(500, {"error": f"search failed: {type(err).__name__}: {err}"})
            return
        if return_scores:
            result = [[{"document": hit_document(h), "score": h.score} for h in hits] for hits in found]
        else:
            result = [[hit_document(h) for h in hits] for hits in found]
        self._send(200, {"result": result})

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the http.server signature
        logger.debug("%s " + format, self.address_string(), *args)
