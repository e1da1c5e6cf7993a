"""``toolgym index`` (build a Lucene index) and ``toolgym serve-retriever`` (serve a backend over HTTP)."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from dataclasses import fields
from pathlib import Path

from toolgym.envs.retrieval import server as retrieval_server
from toolgym.envs.retrieval.corpus import load_corpus_jsonl
from toolgym.envs.retrieval.factory import make_retriever
from toolgym.envs.retrieval.lucene import build_lucene_index
from toolgym.envs.retrieval.server import ServerLimits, flag

SERVED_BACKENDS = ("bm25", "lucene", "dense")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "index", help="build a Lucene index (pyserini) from a JSONL corpus of {id, title, text} or {id, contents}",
        description="Build a Lucene BM25 index for the lucene backend; pass its directory as index_path= "
                    "or to `toolgym serve-retriever --backend lucene --index DIR`.",
    )
    p.add_argument("corpus", type=Path, help="JSONL corpus: {id, title, text} or Search-R1's {id, contents} per line")
    p.add_argument("--out", type=Path, required=True, help="directory of the new index")
    p.add_argument("--threads", type=int, default=None, help="indexing threads (default: the CPU count, at most 8)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index at --out")
    p.set_defaults(handler=_index)

    p = subparsers.add_parser(
        "serve-retriever", help="serve a retrieval backend over HTTP with Search-R1's /retrieve schema",
        description="POST /retrieve {queries, topk, return_scores} -> {result: [[{document, score}]]}; "
                    "GET /health. Point envs at it with retriever='http', retriever_options={'url': ...}.",
    )
    p.add_argument("--backend", choices=SERVED_BACKENDS, default="bm25")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus", type=Path, help="JSONL corpus: {id, title, text} or {id, contents} per line")
    source.add_argument("--index", type=Path, help="an existing Lucene index directory (lucene backend)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only; "
                                                       "0.0.0.0 exposes the server to the network)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--topk", type=int, default=3, help="hits per query when a request gives no topk")
    p.add_argument("--model", default=None, help="dense: a sentence-transformers hub id or local directory")
    limits = p.add_argument_group(
        "limits", "what one request, and the server as a whole, may use; a request over a limit gets a 4xx "
                  "naming the limit, its value and its flag")
    for f in fields(ServerLimits):
        limits.add_argument(flag(f.name), type=type(f.default), default=f.default, metavar=f.name.split("_")[-1].upper(),
                            help=f"{f.metadata['help']} (default {f.default:,})")
    p.set_defaults(handler=_serve)


def _index(args: argparse.Namespace) -> int:
    if args.out.exists() and any(args.out.iterdir()):
        if not args.overwrite:
            raise SystemExit(f"toolgym index: {args.out} exists and is not empty; pass --overwrite to replace it.")
        shutil.rmtree(args.out)
    passages = load_corpus_jsonl(args.corpus)
    build_lucene_index(((p.id, p.contents) for p in passages), args.out, threads=args.threads)
    print(f"indexed {len(passages)} passages from {args.corpus} into {args.out}")
    return 0


def build_served_retriever(backend: str, corpus: Path | None = None, index: Path | None = None,
                           model: str | None = None):
    """The retriever ``serve-retriever`` serves: a backend over a corpus file or a Lucene index."""
    if index is not None:
        if backend != "lucene":
            raise SystemExit(f"toolgym serve-retriever: --index is a Lucene index; use --backend lucene (got {backend}).")
        return make_retriever("lucene", index_path=index)
    options = {"model": model} if backend == "dense" and model else {}
    return make_retriever(backend, load_corpus_jsonl(corpus), **options)


def _serve(args: argparse.Namespace) -> int:
    try:
        limits = ServerLimits(**{f.name: getattr(args, f.name) for f in fields(ServerLimits)})
    except ValueError as err:
        raise SystemExit(f"toolgym serve-retriever: {err}") from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    retriever = build_served_retriever(args.backend, args.corpus, args.index, args.model)
    server = retrieval_server.RetrievalServer(retriever, args.host, args.port, backend=args.backend,
                                              default_topk=args.topk, limits=limits)
    host, port = server.server_address[:2]
    print(f"serving {args.backend} ({len(retriever)} passages) at http://{host}:{port}/retrieve", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m toolgym.envs.retrieval.cli index|serve-retriever ...`` (what ``toolgym`` dispatches to)."""
    parser = argparse.ArgumentParser(prog="toolgym")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
