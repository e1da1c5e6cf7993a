"""The ``openai`` agent against a small OpenAI-compatible server started on loopback.

The server replies from a script: it plays the oracle (searches each gold title, then answers), so
a perfect score proves the whole HTTP path (messages, tool schemas, structured tool calls and
their ids) works; other routes fail with errors, fail once, or answer too slowly.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import gymnasium as gym
import pytest

import toolgym  # noqa: F401
from toolgym.benchmarks import BenchConfig, run_benchmark
from toolgym.benchmarks.models import OpenAIChatModel, parse_chat_response, to_openai_messages

pytest.importorskip("requests")


class ScriptedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tasks):
        super().__init__(("127.0.0.1", 0), Handler)
        self.tasks = tasks  # question -> (supporting titles, answer)
        self.requests: list[tuple[str, dict]] = []
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.slow_replies = 0
        self.slow_question: str | None = None
        self.replied: dict[str, float] = {}

    def handle_error(self, request, client_address):  # a client that gave up (the slow route) is expected
        pass

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{route}/v1"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, status: int, body: dict | str):
        data = (json.dumps(body) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        route = self.path.strip("/").split("/")[0]
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server: ScriptedServer = self.server
        with server.lock:
            server.requests.append((route, payload))
        if self.path != f"/{route}/v1/chat/completions":
            return self._send(404, {"error": f"no route {self.path}"})
        if self.headers.get("Authorization") != "Bearer test-key":
            return self._send(401, {"error": "bad key"})
        if route == "error":
            return self._send(500, {"error": {"message": "the model crashed"}})
        if route == "bad":
            return self._send(400, {"error": {"message": "max_tokens is too large"}})
        if route == "html":  # a web page where the API should be: a base URL without /v1, say
            return self._send(200, "<html><body>Welcome</body></html>")
        if route == "error200":  # some servers report a failed generation with status 200
            return self._send(200, {"error": {"message": "llama_decode returned -1"}})
        if route == "slow":  # answers only once the test releases it: a client that waited would see a reply
            server.release.wait(60)
            with server.lock:
                server.slow_replies += 1
        messages = payload["messages"]
        if route == "flaky":
            key = json.dumps(messages)
            with server.lock:
                first = key not in server.seen
                server.seen.add(key)
            if first:
                return self._send(503, {"error": "overloaded, retry"})
        problem = _schema_problem(payload, native=route != "text")
        if problem:
            return self._send(400, {"error": {"message": problem}})
        question = messages[1]["content"].removeprefix("Question: ")
        titles, answer = server.tasks[question]
        done = sum(1 for m in messages if m["role"] == "assistant")
        if route == "staggered" and done == 0:  # the first question asked waits: its reply comes last
            with server.lock:
                server.slow_question = server.slow_question or question
            if server.slow_question == question:
                time.sleep(0.8)
            with server.lock:
                server.replied[question] = time.monotonic()
        name, args = ("search", {"query": titles[done]}) if done < len(titles) else ("answer", {"answer": answer})
        usage = {"prompt_tokens": 100 + done, "completion_tokens": 7}
        if route == "text":
            content = "<tool_call>" + json.dumps({"name": name, "arguments": args}) + "</tool_call>"
            message = {"role": "assistant", "content": content}
        else:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": f"srv{done}", "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)}}]}
        return self._send(200, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                                "usage": usage})


def _schema_problem(payload: dict, native: bool) -> str | None:
    """What a strict Chat Completions server would reject."""
    if native and not payload.get("tools"):
        return "expected tool schemas"
    if not native and ("tools" in payload or any(m["role"] == "tool" for m in payload["messages"])):
        return "text mode must send no tools and no tool messages"
    open_ids: list[str] = []
    for m in payload["messages"]:
        if m["role"] == "assistant":
            if open_ids:
                return f"tool calls {open_ids} were never answered"
            open_ids = [c["id"] for c in m.get("tool_calls") or []]
        elif m["role"] == "tool":
            if m.get("tool_call_id") not in open_ids:
                return f"tool message answers unknown id {m.get('tool_call_id')!r}"
            open_ids.remove(m["tool_call_id"])
    return None


@pytest.fixture
def server():
    env = gym.make("MultiHopQA-v0")
    tasks = {e.question: (e.supporting_titles, e.answer) for e in env.unwrapped.examples}
    srv = ScriptedServer(tasks)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()


def _run(tmp_path, server, route, **kw):
    config = BenchConfig(agent="openai", model="scripted-model", base_url=server.url(route), api_key="test-key",
                         out=str(tmp_path / route), n=kw.pop("n", 6), batch_size=3, progress=False, **kw)
    results = run_benchmark(config)
    rows = [json.loads(x) for x in (tmp_path / route / "episodes.jsonl").read_text().splitlines()]
    return results["cells"]["openai:scripted-model"]["MultiHopQA-v0"], rows


@pytest.mark.parametrize("route, native", [("tools", True), ("text", False)])
def test_openai_agent_drives_the_env_over_http(tmp_path, server, route, native):
    cell, rows = _run(tmp_path, server, route, native_tools=native)
    assert cell["status"] == {"terminated": 6}
    assert cell["metrics"]["em"]["mean"] == 1.0
    assert all(r["tokens_out"] == 7 * r["turns"] and r["tokens_in"] > 100 * r["turns"] for r in rows)
    assert all(p["model"] == "scripted-model" and p["temperature"] == 0.0 for _, p in server.requests)


def test_each_env_steps_as_its_reply_arrives(tmp_path, server, monkeypatch):
    from toolgym.envs.retrieval import BM25Retriever

    search, searches = BM25Retriever.search, []

    def timed(self, queries, k):
        searches.append((time.monotonic(), list(queries)))
        return search(self, queries, k)

    monkeypatch.setattr(BM25Retriever, "search", timed)
    cell, rows = _run(tmp_path, server, "staggered", n=3)
    assert cell["metrics"]["em"]["mean"] == 1.0 and cell["status"] == {"terminated": 3}
    slow = server.slow_question
    first_query = server.tasks[slow][0][0]
    slow_reply = server.replied[slow]
    early = [queries for t, queries in searches if t < slow_reply]
    # The two quick episodes searched while the slow reply was still being written, without it.
    assert sorted(q for queries in early for q in queries) == sorted(
        server.tasks[q][0][0] for q in server.replied if q != slow)
    assert any(queries == [first_query] for t, queries in searches if t > slow_reply)


@pytest.mark.slow
def test_transient_errors_are_retried(tmp_path, server):
    cell, _ = _run(tmp_path, server, "flaky", n=3)
    assert cell["metrics"]["em"]["mean"] == 1.0
    flaky = [p for route, p in server.requests if route == "flaky"]
    assert len(flaky) == 2 * sum(1 for _ in {json.dumps(p["messages"]) for p in flaky})


def test_server_errors_end_episodes_with_the_message(tmp_path, server):
    cell, rows = _run(tmp_path, server, "error", n=3, max_retries=1)
    assert cell["status"] == {"error": 3}
    assert all("HTTP 500" in r["error"] and "the model crashed" in r["error"] and "2 attempts" in r["error"]
               for r in rows)
    assert sum(1 for route, _ in server.requests if route == "error") == 3 * 2
    cell, rows = _run(tmp_path, server, "bad", n=2, max_retries=3)
    assert "HTTP 400" in rows[0]["error"]
    assert sum(1 for route, _ in server.requests if route == "bad") == 2  # a client error is not retried


def test_a_server_too_slow_for_the_time_limit_times_out(tmp_path, server):
    cell, rows = _run(tmp_path, server, "slow", n=3, time_limit=0.5)
    assert cell["status"] == {"timeout": 3}
    assert all("own time passed 0.5 s" in r["error"] for r in rows)
    assert server.slow_replies == 0  # the client gave up at the deadline, before any reply existed
    server.release.set()


def test_key_and_url_come_from_the_environment(monkeypatch, server):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url("tools"))
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    model = OpenAIChatModel("m")
    env = gym.make("MultiHopQA-v0")
    obs, _ = env.reset(seed=0)
    (completion,) = model.chat([obs], [env.unwrapped.chat_tools], [None])
    assert completion.error is None and completion.text.startswith('<tool_call>{"name": "search"')


def test_message_conversion_leaves_out_calls_the_env_skipped():
    call = '<tool_call>{"name": "search", "arguments": {"query": "%s"}}</tool_call>'
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                {"role": "assistant", "content": "thinking " + call % "a" + call % "b"},
                {"role": "tool", "content": "result a"}, {"role": "user", "content": "Note: b was skipped"}]
    native = to_openai_messages(messages, native=True)
    assert native[2]["content"] == "thinking"
    assert [c["function"]["arguments"] for c in native[2]["tool_calls"]] == ['{"query": "a"}']
    assert native[3] == {"role": "tool", "tool_call_id": native[2]["tool_calls"][0]["id"], "content": "result a"}
    text = to_openai_messages(messages, native=False)
    assert text[2]["content"] == messages[2]["content"]
    assert text[3] == {"role": "user", "content": "<tool_response>\nresult a\n</tool_response>"}


def test_structured_tool_calls_become_hermes_text():
    body = {"choices": [{"message": {"content": "ok", "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "answer", "arguments": '{"answer": "Lyon"}'}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    c = parse_chat_response(body)
    assert c.text == 'ok<tool_call>{"name": "answer", "arguments": {"answer": "Lyon"}}</tool_call>'
    assert (c.tokens_in, c.tokens_out) == (3, 2)


def test_request_options_go_into_every_request(tmp_path, server):
    cell, _ = _run(tmp_path, server, "tools", n=2, request_options={"repeat_penalty": 1.0, "top_k": 1})
    assert cell["metrics"]["em"]["mean"] == 1.0
    assert server.requests and all(p["repeat_penalty"] == 1.0 and p["top_k"] == 1 and p["max_tokens"] == 256
                                   for _, p in server.requests)
    manifest = json.loads((tmp_path / "tools" / "manifest.json").read_text())["openai:scripted-model"]
    assert manifest["request_options"] == {"repeat_penalty": 1.0, "top_k": 1}  # they change the replies


@pytest.mark.parametrize("options, message", [
    ({"temperature": 0.5}, "set them with temperature (--temperature) instead"),
    ({"max_tokens": 9, "model": "x"}, "['max_tokens', 'model'] are fields toolgym sets itself"),
    ({"stop": {1, 2}}, "must be JSON values"),
])
def test_request_options_that_clash_or_are_not_json_are_refused(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        OpenAIChatModel("m", base_url="http://127.0.0.1:1/v1", extra_body=options)
    with pytest.raises(ValueError, match="fields toolgym sets|JSON values"):
        BenchConfig(agent="openai", model="m", request_options=options)


def test_bench_config_checks_the_request_fields():
    with pytest.raises(ValueError, match="request_timeout must be > 0 seconds, got 0"):
        BenchConfig(agent="openai", model="m", request_timeout=0)
    with pytest.raises(ValueError, match="runs a local model: use --agent openai"):
        BenchConfig(agent="tool-call", model="m", request_options={"repeat_penalty": 1.0})
    assert BenchConfig(agent="tool-call", model="m", engine="openai", request_options={"top_k": 1}).request_options


def _reply(server, route):
    url = server.url(route).removesuffix("/v1") if route == "nowhere" else server.url(route)  # no /v1: 404
    model = OpenAIChatModel("m", base_url=url, api_key="test-key", max_retries=0)
    env = gym.make("MultiHopQA-v0")
    obs, _ = env.reset(seed=0)
    (completion,) = model.chat([obs], [env.unwrapped.chat_tools], [None])
    return completion


def test_an_unreachable_server_is_named_with_the_reason_and_the_fix():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = OpenAIChatModel("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    (completion,) = model.chat([[{"role": "user", "content": "hi"}]], [None], [None])
    error = completion.error
    assert f"cannot connect to http://127.0.0.1:{port}/v1 (Connection refused)" in error, error
    assert "llama_cpp.server" in error and "--base-url" in error and "HTTPConnectionPool" not in error


@pytest.mark.parametrize("route, expected", [
    ("html", ["answered HTTP 200 with a body that is not JSON (application/json)", "<html><body>Welcome",
              "ends in /v1"]),
    ("error200", ["answered HTTP 200 with an error: llama_decode returned -1"]),
    ("bad", ["HTTP 400 from", ": max_tokens is too large."]),
    ("nowhere", ["HTTP 404 from", "no route", "Check --base-url"]),
])
def test_error_replies_say_what_came_back_and_the_fix(server, route, expected):
    completion = _reply(server, route)
    assert completion.text == "" and all(part in completion.error for part in expected), completion.error


def test_a_wrong_key_says_how_to_pass_one(server):
    completion = OpenAIChatModel("m", base_url=server.url("tools"), api_key="wrong", max_retries=0).chat(
        [[{"role": "user", "content": "q"}]], [None], [None])[0]
    assert "HTTP 401" in completion.error and "bad key" in completion.error and "--api-key" in completion.error
