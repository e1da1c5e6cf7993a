"""A local OpenAI-compatible server on a GGUF file: llama-cpp-python's, started and stopped from Python.

    with LlamaCppServer("SmolLM2-135M-Instruct.Q4_1.gguf", threads=2) as server:
        run_benchmark(BenchConfig(agent="openai", model="smollm2", base_url=server.base_url,
                                  native_tools=False, request_options={"repeat_penalty": 1.0}, ...))

The server is ``python -m llama_cpp.server`` in a subprocess on 127.0.0.1, so the ``openai`` agent
talks to it over real HTTP, as to any endpoint. llama-cpp-python is a source package (it compiles
llama.cpp, about 12 minutes on 2 cores; toolgym's ``llamacpp`` extra pins it): it is only looked for
here, never imported, since the server runs in its own process.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

INSTALL = "pip install 'llama-cpp-python[server]==0.3.36'"
# What ``python -m llama_cpp.server`` imports beyond llama_cpp: its [server] extra.
SERVER_MODULES = ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def check_installed() -> None:
    """ImportError naming the install line if llama-cpp-python or its server extra is missing."""
    missing = [m for m in ("llama_cpp", *SERVER_MODULES) if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"llama-cpp-python's server is not installed (missing: {', '.join(missing)}). Install it "
                          f"with: {INSTALL} (it compiles llama.cpp with cmake and a C++ compiler, ~12 minutes on "
                          "2 cores)")


def free_port() -> int:
    """A port nothing listens on now (the OS's pick; taken by the server a moment later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppServer:
    """``python -m llama_cpp.server`` serving ``gguf_path`` on 127.0.0.1 while the ``with`` block runs.

    Args:
        gguf_path: the model file (``toolgym get-model smollm2-135m-instruct`` prints one).
        port: default a free port.
        threads: CPU threads for decode and prefill; default half the cores. llama.cpp's threads
            wait for each other every step, so one preempted thread stalls them all: on 2 cores that
            another process kept busy, 2 threads decoded SmolLM2 at 5 tokens/s and 1 at 56.
        n_ctx: context size in tokens: the longest prompt plus reply it serves (a request over it
            gets HTTP 400). Its key/value cache is allocated at start.
        chat_format: llama-cpp-python's name of a chat format; default the GGUF's own template.
        startup_timeout: seconds to wait for ``GET /v1/models`` to answer.
        extra_args: more server flags, e.g. ``["--n_batch", "256"]``.

    Raises (on entering):
        ImportError: llama-cpp-python or its server extra is not installed (names the pip line).
        FileNotFoundError: no such GGUF file.
        RuntimeError: the server exited, or did not answer in time (with the tail of its output).
    """

    def __init__(self, gguf_path: str | Path, *, port: int | None = None, threads: int | None = None,
                 n_ctx: int = 4096, chat_format: str | None = None, startup_timeout: float = 120.0,
                 extra_args: Sequence[str] = ()):
        if n_ctx < 1:
            raise ValueError(f"n_ctx must be >= 1 tokens, got {n_ctx}.")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}.")
        self.gguf_path = Path(gguf_path)
        self.port = port or free_port()
        self.threads = threads or max(1, (os.cpu_count() or 1) // 2)
        self.n_ctx, self.chat_format, self.startup_timeout = n_ctx, chat_format, startup_timeout
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf_path), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
               "--n_threads_batch", str(self.threads),
               # logits of every prompt token (its default) keep up to n_ctx x vocabulary floats (805 MB
               # for SmolLM2 at 4,096) and compute the output layer for each; the benchmark reads no logprobs
               "--logits_all", "false"]
        if self.chat_format:
            cmd += ["--chat_format", self.chat_format]
        return cmd + self.extra_args

    def __enter__(self) -> LlamaCppServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        check_installed()
        if not self.gguf_path.is_file():
            raise FileNotFoundError(f"GGUF file {self.gguf_path} not found: pass a .gguf file (toolgym get-model "
                                    "smollm2-135m-instruct downloads one and prints its path)")
        # a file, not a pipe: nobody reads the server's output while it runs, and a full pipe would block it
        self._log = tempfile.TemporaryFile(mode="w+b")
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise RuntimeError(f"the llama.cpp server exited with code {code} before answering "
                                   f"({' '.join(self.command())}):\n{self._tail()}")
            if self._answers():
                return
            time.sleep(0.25)
        tail = self._tail()
        self.stop()
        raise RuntimeError(f"the llama.cpp server on {self.base_url} did not answer GET /models within "
                           f"{self.startup_timeout:g} s (a large model or a loaded machine needs a larger "
                           f"startup_timeout). Its output ends:\n{tail}")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def output(self) -> str:
        """Everything the server wrote so far (llama.cpp's load log, its errors, uvicorn's request lines)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def _tail(self, lines: int = 20) -> str:
        return "\n".join(self.output().strip().splitlines()[-lines:]) or "(no output)"

    def stop(self) -> None:
        """Terminate the server (kill it if it has not exited 10 s later)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
