"""The /retrieve server and the http client, against each other on loopback."""

import json
import pickle
import time

import pytest

requests = pytest.importorskip("requests", reason="the http backend needs requests (pip install 'toolgym[serve]')")

from toolgym.envs.retrieval import make_retriever  # noqa: E402
from toolgym.envs.retrieval.http import HTTPRetriever, RetrievalError  # noqa: E402
from toolgym.envs.retrieval.server import RetrievalServer  # noqa: E402

from .conftest import QUERIES  # noqa: E402


def test_binds_loopback_by_default(local):
    srv = RetrievalServer(local, port=0)
    try:
        assert srv.server_address[0] == "127.0.0.1"
    finally:
        srv.server_close()


def test_http_results_equal_in_process(server, local):
    remote = make_retriever("http", url=server.url)
    queries = [q for q, _ in QUERIES]
    assert remote.search(queries, 3) == local.search(queries, 3)
    assert remote.search([], 3) == []


def test_base_url_without_path_is_accepted(server):
    base = server.url.removesuffix("/retrieve")
    assert HTTPRetriever(base).search(["violin"], 1)[0][0].passage.id == "p6"


def test_search_r1_schema_on_the_wire(server):
    body = {"queries": ["capital of Italy", "Everest"], "topk": 2, "return_scores": True}
    result = requests.post(server.url, json=body, timeout=5).json()["result"]
    assert len(result) == 2 and len(result[0]) == 2
    first = result[0][0]
    assert set(first) == {"document", "score"}
    assert first["document"]["id"] == "p1"
    assert first["document"]["contents"] == "Rome\nRome is the capital city of Italy, founded on seven hills."
    # Without return_scores (Search-R1's default) the lists hold bare documents.
    bare = requests.post(server.url, json={"queries": ["Everest"], "topk": 1}, timeout=5).json()["result"]
    assert bare[0][0]["id"] == "p5" and "score" not in bare[0][0]


def test_health(server):
    health = requests.get(server.url.replace("/retrieve", "/health"), timeout=5).json()
    assert health == {"status": "ok", "backend": "bm25", "passages": 8}
    assert HTTPRetriever(server.url).wait_until_ready(timeout=5)["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"topk": 3}).encode(), "queries"),
        (json.dumps({"queries": "one string"}).encode(), "queries"),
        (json.dumps({"queries": ["a", 3]}).encode(), "queries"),
        (json.dumps({"queries": ["a"], "topk": 0}).encode(), "topk"),
        (json.dumps({"queries": ["a"], "topk": "3"}).encode(), "topk"),
        (json.dumps({"queries": ["a"], "topk": True}).encode(), "topk"),
        (json.dumps({"queries": ["a"], "return_scores": "yes"}).encode(), "return_scores"),
        (json.dumps({"queries": ["a"], "top_k": 3}).encode(), "top_k"),
    ],
)
def test_malformed_requests_get_400_naming_the_field(server, body, field):
    response = requests.post(server.url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["error"].startswith(field + ":")


def test_unknown_path_is_404_listing_the_endpoints(server):
    response = requests.post(server.url.replace("/retrieve", "/search"), json={}, timeout=5)
    assert response.status_code == 404 and "/retrieve" in response.json()["error"]


def test_client_does_not_retry_a_rejected_request(server, monkeypatch):
    remote = HTTPRetriever(server.url, retries=5, backoff=1.0)
    start = time.monotonic()
    with pytest.raises(RetrievalError, match="rejected the request"):
        remote._post({"queries": "not a list"})
    assert time.monotonic() - start < 1.0  # no backoff sleeps


class _Failing:
    def __init__(self, failures):
        self.failures, self.calls = failures, 0

    def search(self, queries, k):
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("index shard unavailable")
        return [[] for _ in queries]

    def __len__(self):
        return 0


def test_5xx_is_retried_then_succeeds():
    backend = _Failing(failures=2)
    srv = RetrievalServer(backend, port=0)
    srv.start_in_thread()
    try:
        assert HTTPRetriever(srv.url, retries=3, backoff=0.01).search(["q"], 3) == [[]]
        assert backend.calls == 3
    finally:
        srv.close()


def test_5xx_after_the_last_retry_raises_with_the_servers_reason():
    srv = RetrievalServer(_Failing(failures=100), port=0)
    srv.start_in_thread()
    try:
        with pytest.raises(RetrievalError, match=r"3 attempt\(s\).*HTTP 500.*index shard unavailable"):
            HTTPRetriever(srv.url, retries=2, backoff=0.01).search(["q"], 3)
    finally:
        srv.close()


def test_stopping_the_server_mid_use_raises_within_the_budget(local):
    srv = RetrievalServer(local, port=0)
    srv.start_in_thread()
    remote = HTTPRetriever(srv.url, timeout=2.0, retries=3, backoff=0.05)
    assert remote.search(["violin"], 1)[0][0].passage.id == "p6"  # a kept-alive connection now exists
    srv.close()
    start = time.monotonic()
    with pytest.raises(RetrievalError, match="did not answer after 4 attempt"):
        remote.search(["violin"], 1)
    # Connection refused fails fast: the budget is the backoffs, 0.05 + 0.1 + 0.2 s.
    assert time.monotonic() - start < 2.0 * 4 + 0.35


def test_a_hanging_server_is_cut_off_by_the_deadline():
    import socket

    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/retrieve"
        remote = HTTPRetriever(url, timeout=0.3, retries=10, backoff=0.05, deadline=1.0)
        start = time.monotonic()
        with pytest.raises(RetrievalError, match="ReadTimeout"):
            remote.search(["q"], 1)
        assert time.monotonic() - start < 1.0 + 0.5


def test_wrong_schema_is_a_clear_error(local):
    import http.server
    import threading

    class Other(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            body = b'{"hits": []}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Other)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with pytest.raises(RetrievalError, match="expected 'result'"):
            HTTPRetriever(f"http://127.0.0.1:{srv.server_address[1]}").search(["q"], 1)
    finally:
        srv.shutdown()
        srv.server_close()


def test_client_pickles_as_its_configuration(server):
    remote = HTTPRetriever(server.url, timeout=3.0, retries=1)
    clone = pickle.loads(pickle.dumps(remote))
    assert (clone.url, clone.timeout, clone.retries) == (server.url, 3.0, 1)
    assert clone.search(["violin"], 1) == remote.search(["violin"], 1)


@pytest.mark.parametrize("bad", ["localhost:8000", "ftp://x/retrieve", ""])
def test_bad_urls_are_refused(bad):
    with pytest.raises(ValueError, match="http"):
        HTTPRetriever(bad)


def test_env_reports_a_dead_server_as_a_tool_error_and_goes_on(local, corpus_file, passages):
    """The issue's scenario: the server stops mid-episode; the step says why, the episode continues."""
    gym = pytest.importorskip("gymnasium")
    import toolgym  # noqa: F401

    srv = RetrievalServer(local, port=0)
    srv.start_in_thread()
    questions = corpus_file.with_name("questions.jsonl")
    questions.write_text('{"id": "q1", "question": "What is the capital of Italy?", "answer": "Rome"}\n')
    env = gym.make(
        "MultiHopQA-v0", dataset="qa", data_files=str(questions), corpus=str(corpus_file), retriever="http",
        retriever_options={"url": srv.url, "timeout": 1.0, "retries": 1, "backoff": 0.01},
    )
    env.reset(seed=0)
    search = '<tool_call>{"name": "search", "arguments": {"query": "capital of Italy"}}</tool_call>'
    obs, _, terminated, truncated, info = env.step(search)
    assert info["tool_error"] is None and "Rome" in obs[-1]["content"]
    srv.close()
    obs, _, terminated, truncated, info = env.step(search.replace("Italy", "France"))
    assert info["tool_error"] and "RetrievalError" in info["tool_error"]
    assert not terminated and not truncated
    assert "did not answer" in obs[-1]["content"]
    env.close()
