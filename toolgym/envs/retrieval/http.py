"""A client of a retrieval server speaking Search-R1's ``/retrieve`` schema.

Request ``{"queries": [...], "topk": k, "return_scores": true}``, response
``{"result": [[{"document": {"id": ..., "contents": ...}, "score": ...}, ...], ...]}``: the schema of
``toolgym serve-retriever`` and of Search-R1's ``retrieval_server.py``, so the env can use a server
someone already runs. Needs ``requests`` (``pip install 'toolgym[serve]'``): its pooled keep-alive
connections save a TCP handshake and a server thread per query, which is most of the overhead on
loopback, and one Session is safe to share between the threads of vector envs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from toolgym.envs.deps import require
from toolgym.envs.retrieval.base import Hit, Passage, passage_from_contents


class RetrievalError(RuntimeError):
    """The retrieval server could not answer (down, timing out, erroring or speaking another schema)."""


def _endpoint(url: str, path: str) -> str:
    """``http://host:8000`` or ``http://host:8000/retrieve`` -> the URL of ``path`` on that server."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Not an http(s) URL: {url!r}; expected e.g. 'http://127.0.0.1:8000/retrieve'.")
    base = parts.path[: -len("/retrieve")] if parts.path.endswith("/retrieve") else parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, base + path, "", ""))


def document_to_passage(document: Any, where: str) -> Passage:
    """A passage from a server document: ``{id, title, text}`` or Search-R1's ``{id, contents}``."""
    if not isinstance(document, dict):
        raise RetrievalError(f"{where}: expected a document object, got {type(document).__name__}")
    doc_id = str(document.get("id", ""))
    if "contents" in document:
        return passage_from_contents(doc_id, str(document["contents"]))
    if "text" in document:
        return Passage(doc_id, str(document.get("title", "")), str(document["text"]))
    raise RetrievalError(f"{where}: the document has neither 'contents' nor 'text' (keys: {sorted(document)})")


class HTTPRetriever:
    """Search through a ``/retrieve`` server, with a timeout and retries.

    Each attempt waits at most ``timeout`` seconds; connection errors, timeouts and 5xx answers are
    retried up to ``retries`` times with exponential backoff (``backoff``, 2x, 4x, ... capped at
    ``max_backoff``), and all of it stays within ``deadline`` seconds when given. Then
    ``search`` raises :class:`RetrievalError` naming the server and the last error (the search tool
    turns it into an error result; the episode goes on). A 4xx answer is not retried: the request
    itself is wrong. A batch larger than ``max_batch_queries`` queries or ``max_batch_hits``
    queries x k goes as several requests, and a query is cut to ``max_query_chars``, within the
    server's default limits (``toolgym serve-retriever --max-queries 4096 --max-hits 20000
    --max-query-chars 1000``): one long query a policy wrote must not fail the batch of every
    env. Pickles as its configuration (a fresh Session on the other side).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        max_backoff: float = 4.0,
        deadline: float | None = None,
        max_batch_queries: int = 1024,
        max_batch_hits: int = 10_000,
        max_query_chars: int = 1000,
    ):
        if min(max_batch_queries, max_batch_hits, max_query_chars) < 1:
            raise ValueError(f"max_batch_queries, max_batch_hits and max_query_chars must be >= 1, got "
                             f"{max_batch_queries}, {max_batch_hits} and {max_query_chars}.")
        if timeout <= 0 or retries < 0 or backoff < 0 or (deadline is not None and deadline <= 0):
            raise ValueError(
                f"Need timeout > 0, retries >= 0, backoff >= 0, deadline > 0 or None; "
                f"got timeout={timeout}, retries={retries}, backoff={backoff}, deadline={deadline}."
            )
        self.url = _endpoint(url, "/retrieve")
        self.health_url = _endpoint(url, "/health")
        self.timeout, self.retries, self.backoff, self.max_backoff = timeout, retries, backoff, max_backoff
        self.deadline = deadline
        self.max_batch_queries, self.max_batch_hits = max_batch_queries, max_batch_hits
        self.max_query_chars = max_query_chars
        self._session = self._new_session()

    @staticmethod
    def _new_session():
        return require("requests", "serve", user="the http retrieval backend").Session()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_session"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._session = self._new_session()

    def close(self) -> None:
        self._session.close()

    # -- transport ------------------------------------------------------------------------
    def _post(self, payload: dict) -> Any:
        import requests  # extra serve (checked when the session was made)

        start = time.monotonic()
        last = "no attempt made"
        for attempt in range(self.retries + 1):
            remaining = None if self.deadline is None else self.deadline - (time.monotonic() - start)
            if remaining is not None and remaining <= 0:
                break
            try:
                response = self._session.post(
                    self.url, json=payload, timeout=self.timeout if remaining is None else min(self.timeout, remaining)
                )
            except (requests.ConnectionError, requests.Timeout) as err:
                last = f"{type(err).__name__}: {err}"
            else:
                if response.status_code < 400:
                    try:
                        return response.json()
                    except ValueError as err:
                        raise RetrievalError(f"{self.url} answered with invalid JSON: {err}") from err
                detail = response.text[:300]
                if response.status_code < 500:
                    raise RetrievalError(f"{self.url} rejected the request (HTTP {response.status_code}): {detail}")
                last = f"HTTP {response.status_code}: {detail}"
            if attempt < self.retries:
                pause = min(self.max_backoff, self.backoff * 2**attempt)
                if self.deadline is not None:
                    pause = min(pause, max(0.0, self.deadline - (time.monotonic() - start)))
                time.sleep(pause)
        raise RetrievalError(
            f"Retrieval server {self.url} did not answer after {attempt + 1} attempt(s) "
            f"in {time.monotonic() - start:.1f}s; last error: {last}"
        )

    def wait_until_ready(self, timeout: float = 60.0, interval: float = 0.1) -> dict:
        """Poll ``/health`` until the server answers (returns its JSON), or raise after ``timeout`` s."""
        import requests  # extra serve (checked when the session was made)

        end = time.monotonic() + timeout
        while True:
            try:
                response = self._session.get(self.health_url, timeout=min(self.timeout, 5.0))
                if response.ok:
                    return response.json()
                last = f"HTTP {response.status_code}"
            except requests.RequestException as err:
                last = str(err)
            if time.monotonic() > end:
                raise RetrievalError(f"{self.health_url} not ready after {timeout}s: {last}")
            time.sleep(interval)

    # -- the Retriever protocol -------------------------------------------------------------
    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        k = max(1, int(k))
        step = max(1, min(self.max_batch_queries, self.max_batch_hits // k))
        return [hits for start in range(0, len(queries), step) for hits in self._search(queries[start:start + step], k)]

    def _search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        body = self._post({"queries": [q[: self.max_query_chars] for q in queries], "topk": k, "return_scores": True})
        result = body.get("result") if isinstance(body, dict) else None
        if not isinstance(result, list) or len(result) != len(queries):
            got = f"{len(result)} lists" if isinstance(result, list) else repr(body)[:200]
            raise RetrievalError(f"{self.url}: expected 'result' with {len(queries)} lists of hits, got {got}")
        hits = []
        for qi, items in enumerate(result):
            if not isinstance(items, list):
                raise RetrievalError(f"{self.url}: result[{qi}] is not a list")
            row = []
            for rank, item in enumerate(items):
                where = f"{self.url}: result[{qi}][{rank}]"
                if isinstance(item, dict) and "document" in item:  # with return_scores
                    row.append(Hit(document_to_passage(item["document"], where), float(item.get("score", 0.0))))
                else:  # a server that ignores return_scores sends the bare documents
                    row.append(Hit(document_to_passage(item, where), 0.0))
            hits.append(row)
        return hits
