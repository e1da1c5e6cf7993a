"""``toolgym view``: write the episode viewer's page for a bench or training output."""

from __future__ import annotations

import argparse

from toolgym.viewer.page import write_page


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "view", help="write one self-contained HTML page of stored episodes (opens offline in a browser)",
        description="Writes one HTML file (no server, no network) showing the episodes of a `toolgym bench --out` "
                    "directory, a training output_dir or an episodes.jsonl: a filterable table, each episode as a "
                    "conversation with its tool calls, reward terms and errors, two episodes of one question side "
                    "by side, and a training run's curves and trained-token masks.")
    p.add_argument("path", help="a bench output directory, a training output_dir, or an episodes.jsonl")
    p.add_argument("--out", default=None, help="the HTML file to write (default: episodes.html beside the records)")
    p.set_defaults(handler=_view)


def _view(args: argparse.Namespace) -> int:
    target, n = write_page(args.path, args.out)
    size = target.stat().st_size
    print(f"{n} episodes -> {target} ({size / 1e6:.1f} MB); open it in a browser: file://{target.resolve()}")
    return 0
