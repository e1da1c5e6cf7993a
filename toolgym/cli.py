"""The ``toolgym`` command. Each subcommand lives in the module that owns the concept; that
module exposes ``register(subparsers)`` and is listed in ``_SUBCOMMANDS`` (imported lazily, so
``toolgym envs`` never pays for torch)."""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that add subcommands; each exposes register(subparsers).
_SUBCOMMANDS = [
    "toolgym.envs.cli",
    "toolgym.trainers.cli",
    "toolgym.envs.retrieval.cli",
    "toolgym.benchmarks.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolgym",
        description="Gymnasium environments, a trainer and a benchmark for tool-using LLM agents.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:  # an optional part missing its extra still lets the rest work
            print(f"toolgym: {module_name} unavailable ({err})", file=sys.stderr)
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
