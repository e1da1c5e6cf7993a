import socket
import subprocess
import sys

import pytest

from toolgym.envs.retrieval.cli import build_served_retriever, main


def test_serve_retriever_serves_a_jsonl_corpus(corpus_file):
    pytest.importorskip("requests", reason="the http client needs requests (pip install 'toolgym[serve]')")
    from toolgym.envs.retrieval.http import HTTPRetriever

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "toolgym.cli", "serve-retriever", "--corpus", str(corpus_file), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        client = HTTPRetriever(f"http://127.0.0.1:{port}/retrieve")
        assert client.wait_until_ready(timeout=60) == {"status": "ok", "backend": "bm25", "passages": 8}
        assert client.search(["capital of Italy"], 1)[0][0].passage.title == "Rome"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/retrieve" in out


def test_an_index_needs_the_lucene_backend(tmp_path):
    with pytest.raises(SystemExit, match="--backend lucene"):
        build_served_retriever("bm25", index=tmp_path)


def test_serve_retriever_requires_a_corpus_or_an_index(capsys):
    with pytest.raises(SystemExit):
        main(["serve-retriever", "--backend", "bm25"])
    assert "--corpus" in capsys.readouterr().err


def test_a_corpus_with_a_bad_line_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "title": "A", "text": "a"}\n{"id": "2", "title": "B"}\n')
    with pytest.raises(Exception, match="line 2"):
        build_served_retriever("bm25", corpus=bad)


def test_every_server_limit_is_a_flag_and_reaches_the_server(corpus_file, monkeypatch):
    import toolgym.envs.retrieval.server as server_module

    started = {}

    class _Server:
        server_address = ("127.0.0.1", 1)

        def __init__(self, retriever, host, port, **kwargs):
            started.update(kwargs)

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    monkeypatch.setattr(server_module, "RetrievalServer", _Server)
    main(["serve-retriever", "--corpus", str(corpus_file), "--port", "0", "--max-queries", "7", "--max-hits", "70",
          "--body-seconds", "2.5"])
    limits = started["limits"]
    assert (limits.max_queries, limits.max_hits, limits.body_seconds) == (7, 70, 2.5)
    assert limits.max_json_depth == server_module.ServerLimits().max_json_depth  # the others keep their defaults


def test_a_bad_limit_names_its_flag_before_the_corpus_is_read(tmp_path):
    with pytest.raises(SystemExit, match=r"--max-inflight\) must be a positive number, got 0"):
        main(["serve-retriever", "--corpus", str(tmp_path / "missing.jsonl"), "--max-inflight", "0"])
