"""The retrieval server's limits: each hostile request gets a 4xx naming its limit, while a
concurrent normal client keeps getting answers."""

import json
import socket
import threading
import time

import pytest

requests = pytest.importorskip("requests", reason="the http client needs requests (pip install 'toolgym[serve]')")

from toolgym.envs.retrieval.http import HTTPRetriever  # noqa: E402
from toolgym.envs.retrieval.server import (  # noqa: E402
    BadRequest,
    RetrievalServer,
    ServerLimits,
    json_depth,
    parse_request,
)

from .conftest import QUERIES  # noqa: E402


def _raw(server, request: bytes, timeout: float = 10.0) -> tuple[int, dict, dict]:
    """Send bytes as they are (no client fixes the headers), return (status, headers, JSON body)."""
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers, json.loads(body) if body else {}


def _post(body: bytes, extra: str = "", length: str | None = None) -> bytes:
    size = f"Content-Length: {len(body) if length is None else length}\r\n" if length != "" else ""
    return f"POST /retrieve HTTP/1.1\r\nHost: x\r\n{size}{extra}\r\n".encode("latin-1") + body


def _json(payload) -> bytes:
    return json.dumps(payload).encode()


# name -> (raw request, status, words the error must contain). The reproductions of the attacks
# that exhausted the server, and the edges of each limit.
HOSTILE = {
    "10,000 queries at topk 1000": (_post(_json({"queries": ["a b"] * 10_000, "topk": 1000})), 413,
                                    ["10,000", "--max-queries", "4,096"]),
    "queries x topk over the hit limit": (_post(_json({"queries": ["a"] * 4000, "topk": 10})), 413,
                                          ["40,000", "--max-hits", "20,000"]),
    "one query of 30,000 words": (_post(_json({"queries": ["ok", "word " * 30_000]})), 413,
                                  ["queries[1]", "150,000", "--max-query-chars"]),
    "Content-Length -1": (_post(b'{"queries": ["x"]}' + b"x" * 100_000, length="-1"), 400,
                          ["Content-Length", "'-1'"]),
    "Content-Length of a superscript digit": (_post(b"{}", length="\u00b2"), 400, ["Content-Length", "'²'"]),
    "no Content-Length": (_post(b'{"queries": ["x"]}', length=""), 411, ["Content-Length: required"]),
    "chunked body": (_post(b"", extra="Transfer-Encoding: chunked\r\n", length=""), 411, ["chunked"]),
    "Content-Length over the body limit": (_post(b"", length=str(20 << 20)), 413,
                                           ["20,971,520 bytes", "--max-body-bytes"]),
    "JSON nested 100,000 deep": (_post(b"[" * 100_000), 413, ["nesting depth", "100,000", "--max-json-depth"]),
    "topk over the limit": (_post(_json({"queries": ["a"], "topk": 5000})), 400, ["topk", "--max-topk"]),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_request_gets_a_4xx_naming_the_limit(server, name):
    request, status, words = HOSTILE[name]
    got, headers, body = _raw(server, request)
    assert got == status, body
    assert all(word in body["error"] for word in words), body["error"]
    # and the server still answers
    assert HTTPRetriever(server.url).search(["capital of Italy"], 1)[0][0].passage.id == "p1"


def test_a_normal_client_keeps_getting_answers_during_a_hostile_burst(server, local):
    queries = [q for q, _ in QUERIES]
    expected = local.search(queries, 3)
    answers, failures, stop = [], [], threading.Event()

    def normal_client():
        client = HTTPRetriever(server.url, retries=0, timeout=30)
        while not stop.is_set():
            try:
                answers.append(client.search(queries, 3) == expected)
            except Exception as err:  # noqa: BLE001 - recorded, asserted below
                failures.append(err)

    def attacker(requests_):
        for request, status, _ in requests_:
            got, _, _ = _raw(server, request, timeout=30)
            statuses.append((got, status))

    statuses: list[tuple[int, int]] = []
    normal = threading.Thread(target=normal_client)
    attackers = [threading.Thread(target=attacker, args=(list(HOSTILE.values()),)) for _ in range(4)]
    normal.start()
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join(60)
    before = len(answers)
    deadline = time.monotonic() + 10
    while len(answers) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    normal.join(30)
    assert not failures, failures[:3]
    assert len(statuses) == 4 * len(HOSTILE) and all(got == want for got, want in statuses), statuses
    assert answers and all(answers)


class _Slow:
    """A backend that takes its time, so that requests pile up."""

    thread_safe = False

    def __init__(self, seconds):
        self.seconds = seconds

    def search(self, queries, k):
        time.sleep(self.seconds)
        return [[] for _ in queries]

    def __len__(self):
        return 0


def test_a_full_queue_answers_503_with_retry_after_and_the_client_retries():
    srv = RetrievalServer(_Slow(0.5), port=0, limits=ServerLimits(max_inflight=1, max_pending=1))
    srv.start_in_thread()
    try:
        results = []
        threads = [threading.Thread(target=lambda: results.append(_raw(srv, _post(_json({"queries": ["q"]})))))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)  # in order: one in flight, one waiting, then the queue is full
        for thread in threads:
            thread.join(30)
        statuses = sorted(status for status, _, _ in results)
        assert statuses == [200, 200, 503, 503], statuses
        refused = next((h, b) for s, h, b in results if s == 503)
        assert refused[0]["retry-after"] == "1" and "--max-pending" in refused[1]["error"]
        # The http client retries a 503 with backoff and gets its answer.
        assert HTTPRetriever(srv.url, retries=5, backoff=0.2).search(["q"], 1) == [[]]
    finally:
        srv.close()


def test_connections_over_the_limit_are_answered_503_and_closed(local):
    srv = RetrievalServer(local, port=0, limits=ServerLimits(max_connections=2))
    srv.start_in_thread()
    idle = []
    try:
        for _ in range(2):  # two kept-alive connections that send nothing
            idle.append(socket.create_connection(srv.server_address[:2]))
        time.sleep(0.2)
        status, _, body = _raw(srv, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503 and "--max-connections" in body["error"]
        for conn in idle:
            conn.close()
        time.sleep(0.3)
        assert _raw(srv, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200
    finally:
        for conn in idle:
            conn.close()
        srv.close()


def test_a_body_that_never_arrives_is_cut_off(local):
    srv = RetrievalServer(local, port=0, limits=ServerLimits(body_seconds=0.3))
    srv.start_in_thread()
    try:
        status, _, body = _raw(srv, _post(b'{"queries": ', length="100"))
        assert status == 408 and "--body-seconds" in body["error"]
    finally:
        srv.close()


def test_limits_are_validated_and_name_their_flag():
    with pytest.raises(ValueError, match=r"max_hits \(--max-hits\) must be a positive number, got 0"):
        ServerLimits(max_hits=0)
    with pytest.raises(ValueError, match="--max-topk"):
        RetrievalServer(_Slow(0), port=0, default_topk=50, limits=ServerLimits(max_topk=10))


@pytest.mark.parametrize(("body", "depth"), [
    (b'{"queries": ["a", "b"]}', 2), (b"[]", 1), (b"", 0), (b'{"queries": ["[[[", "\\"[{"]}', 2),
    (b"[" * 50_000, 50_000), (b'[[1], [[2]]]', 3),
])
def test_json_depth_ignores_brackets_inside_strings(body, depth):
    assert json_depth(body) == depth


def test_parse_request_takes_limits():
    limits = ServerLimits(max_queries=2, max_query_chars=5)
    assert parse_request(_json({"queries": ["abc", "de"], "topk": 2}), 3, limits) == (["abc", "de"], 2, False)
    with pytest.raises(BadRequest, match="the number of queries: 3, the limit is 2") as err:
        parse_request(_json({"queries": ["a"] * 3}), 3, limits)
    assert err.value.status == 413


def test_the_client_splits_a_batch_over_the_servers_limits(local):
    srv = RetrievalServer(local, port=0, limits=ServerLimits(max_queries=4, max_hits=6))
    srv.start_in_thread()
    try:
        queries = [q for q, _ in QUERIES] * 3  # 15 queries
        client = HTTPRetriever(srv.url, max_batch_queries=4, max_batch_hits=6)
        assert client.search(queries, 2) == local.search(queries, 2)  # requests of 3 queries x 2 hits
        status, _, _ = _raw(srv, _post(_json({"queries": queries, "topk": 2})))
        assert status == 413  # the same batch in one request is refused
    finally:
        srv.close()


def test_the_client_cuts_a_long_query_instead_of_failing_the_batch(server, local):
    long = "capital of Italy " + "filler " * 1000  # 7,017 characters; the server takes 1,000
    hits = HTTPRetriever(server.url).search([long, "Everest"], 1)
    assert hits == local.search([long[:1000], "Everest"], 1)
    assert hits[0][0].passage.id == "p1" and hits[1][0].passage.id == "p5"
