"""``LlamaCppServer``: llama-cpp-python's OpenAI-compatible server on a GGUF, and the ``openai`` agent
playing a benchmark episode against it over HTTP.

The lifecycle (start, wait for ``GET /v1/models``, errors with the server's output, stop) is tested
in a second on stand-in processes; the real server on SmolLM2 is slow and skipped, with the reason,
where llama-cpp-python (a 15-minute source build) or the GGUF is not available.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

import pytest

from toolgym.benchmarks import BenchConfig, llamacpp, run_benchmark
from toolgym.benchmarks.llamacpp import INSTALL, LlamaCppServer

# Stand-ins for `python -m llama_cpp.server`: one that answers GET /v1/models on its port, one
# that fails at load, one that never answers.
_ANSWERS = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"object": "list", "data": [{"id": "stand-in"}]}' if self.path == "/v1/models" else b"{}"
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
print("loading stand-in", flush=True)
HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""
_FAILS = "import sys; print('gguf_init_from_file: invalid magic characters', file=sys.stderr); sys.exit(1)"
_SILENT = "import time; print('loading a very large model', flush=True); time.sleep(60)"


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    """A LlamaCppServer class whose process runs the given script (with the port as argv[1])."""
    monkeypatch.setattr(llamacpp, "check_installed", lambda: None)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")

    def make(script: str, **kw) -> LlamaCppServer:
        server = LlamaCppServer(gguf, **kw)
        monkeypatch.setattr(server, "command", lambda: [sys.executable, "-c", script, str(server.port)])
        return server

    return make


def test_the_server_answers_inside_the_block_and_is_stopped_after_it(stand_in):
    server = stand_in(_ANSWERS)
    with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "stand-in"
        process = server.process
        assert "loading stand-in" in server.output()
    assert server.process is None and process.poll() is not None


def test_a_server_that_exits_at_load_says_so_with_its_output(stand_in):
    with pytest.raises(RuntimeError, match="exited with code 1 before answering") as err:
        with stand_in(_FAILS):
            pass
    assert "invalid magic characters" in str(err.value)


def test_a_server_that_never_answers_times_out_with_its_output_and_is_stopped(stand_in):
    server = stand_in(_SILENT, startup_timeout=1.5)
    with pytest.raises(RuntimeError, match=r"did not answer GET /models within 1.5 s") as err:
        server.start()
    assert "loading a very large model" in str(err.value) and server.process is None


def test_missing_llama_cpp_names_the_install_line(monkeypatch, tmp_path):
    real = llamacpp.importlib.util.find_spec
    monkeypatch.setattr(llamacpp.importlib.util, "find_spec", lambda name: None if name == "llama_cpp" else real(name))
    with pytest.raises(ImportError, match=r"missing: llama_cpp.*pip install 'llama-cpp-python\[server\]==0.3.36'"):
        LlamaCppServer(tmp_path / "x.gguf").start()


def test_a_missing_gguf_file_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(llamacpp, "check_installed", lambda: None)
    with pytest.raises(FileNotFoundError, match="toolgym get-model smollm2-135m-instruct"):
        LlamaCppServer(tmp_path / "absent.gguf").start()


def test_the_command_serves_on_loopback_with_the_given_threads_and_context(tmp_path):
    cmd = LlamaCppServer(tmp_path / "m.gguf", port=8123, threads=2, n_ctx=8192, chat_format="chatml").command()
    flags = dict(zip(cmd[3::2], cmd[4::2]))
    assert cmd[1:3] == ["-m", "llama_cpp.server"] and flags["--host"] == "127.0.0.1" and flags["--port"] == "8123"
    assert flags["--n_threads"] == flags["--n_threads_batch"] == "2" and flags["--n_ctx"] == "8192"
    assert flags["--chat_format"] == "chatml" and flags["--logits_all"] == "false"
    assert LlamaCppServer(tmp_path / "m.gguf").threads == max(1, (os.cpu_count() or 1) // 2)
    with pytest.raises(ValueError, match="n_ctx must be >= 1"):
        LlamaCppServer(tmp_path / "m.gguf", n_ctx=0)


@pytest.mark.slow
def test_the_openai_agent_plays_a_bench_episode_against_llama_cpp_serving_smollm2(smollm2, shared_data, tmp_path):
    pytest.importorskip("llama_cpp", reason=f"llama-cpp-python is not installed ({INSTALL}; a ~15-minute build)")
    pytest.importorskip("requests")
    kwargs = {"data_files": str(shared_data / "hotpotqa_dev_distractor.sample.json"), "corpus": "example",
              "max_turns": 2, "top_k": 1, "max_tool_result_chars": 600}
    with LlamaCppServer(smollm2, n_ctx=4096) as server:
        # what `toolgym bench --agent openai --base-url ... --native-tools false --request-options
        # repeat_penalty=1.0` runs
        config = BenchConfig(agent="openai", model="smollm2", base_url=server.base_url, native_tools=False,
                             request_options={"repeat_penalty": 1.0}, envs=["HotpotQA-v0"], n=1, batch_size=1,
                             max_new_tokens=48, env_kwargs=kwargs, out=str(tmp_path), progress=False, reports=False)
        run_benchmark(config)
        process = server.process
        assert "POST /v1/chat/completions HTTP/1.1\" 200" in server.output()
    assert process.poll() is not None  # stopped with the block
    (record,) = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert record["error"] is None and record["status"] in ("terminated", "truncated")
    assert record["first"][1]["role"] == "user" and record["steps"] and record["tokens_out"] > 0
    assert all(step["action"] and step["tokens_in"] > 0 for step in record["steps"])
