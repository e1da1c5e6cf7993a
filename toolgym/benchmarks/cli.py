"""``toolgym bench``: run an agent on envs, rebuild reports, or compare two result directories.

    toolgym bench --agent naive-rag --model Qwen/Qwen2.5-3B-Instruct --envs HotpotQA-v0,MuSiQue-v0 --n 500 --out results/
    toolgym bench --agent naive-rag --model Qwen/Qwen2.5-3B-Instruct --suite search-r1 --corpus wiki18/ --out results/
    toolgym bench --config configs/smollm2_agent_r1.yaml --agent policy --model runs/smollm2_agent_r1/final
    toolgym bench report results/
    toolgym bench compare results/A results/B

--config FILE reads the fields from a YAML file (a bench config, or a train config's bench: section);
flags given on the command line win over it, and --env-kwargs adds to its env_kwargs.

--request-options KEY=VALUE adds fields to every request of the openai agent: a server's own sampling options,
e.g. repeat_penalty=1.0 for llama-cpp-python's server (python -m llama_cpp.server --model FILE.gguf).

Plots need matplotlib (pip install 'toolgym[bench]'); without it everything else is written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolgym.benchmarks.agents import AGENTS
from toolgym.benchmarks.plots import available
from toolgym.benchmarks.reports import compare, main_table, markdown, search_r1_table, write_reports
from toolgym.benchmarks.runner import BenchConfig, config_fields, run_benchmark
from toolgym.envs.cli import parse_overrides
from toolgym.envs.errors import unknown_name_error
from toolgym.envs.registration import check_env_args

ACTIONS = ("run", "compare", "report")
_UNSET = object()  # --time-limit's "not given" (None is its "no limit")


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark an agent on toolgym envs (also: bench compare A B, bench report DIR)",
        description=__doc__.replace("``", ""), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", nargs="*", metavar="[compare A B | report DIR]",
                   help="no action: run the benchmark; 'compare DIR_A DIR_B': differences with 95%% intervals; "
                        "'report DIR': rewrite results.json/.md, plots and predictions from episodes.jsonl")
    p.add_argument("--config", default=None, metavar="FILE.yaml",
                   help="read these fields from a YAML file (a bench config, or the bench: section of a train "
                        "config); flags given here win over it")
    # every field's flag defaults to None, so that a flag given wins over --config and an absent one does not
    for name, default, help_text in config_fields():
        flag = "--" + name.replace("_", "-")
        help_text = help_text.replace("%", "%%")
        if default is not None and "default" not in help_text:  # some helps say their default in words
            shown = ",".join(default) if isinstance(default, list) else str(default).lower() if isinstance(
                default, bool) else default
            help_text += f" (default: {shown})"
        if name == "agent":
            agents = ", ".join(f"{k} ({v[2]})" for k, v in AGENTS.items())
            p.add_argument(flag, help=f"one of: {agents} (default: {default})")
        elif name == "envs":
            p.add_argument(flag, help=help_text + "; comma-separated")
        elif name == "env_kwargs":
            p.add_argument(flag, nargs="*", metavar="[ENV_ID:]KEY=VALUE",
                           help="gym.make arguments, values in YAML (e.g. corpus=example "
                                "HotpotQA-v0:data_files=dev.json); a ENV_ID: prefix applies to that env only")
        elif name == "chat_template_kwargs":
            p.add_argument(flag, nargs="*", metavar="KEY=VALUE", help=help_text + "; values in YAML")
        elif name == "request_options":  # repeatable: each use adds its pairs
            p.add_argument(flag, nargs="*", action="extend", metavar="KEY=VALUE", help=help_text + "; values in YAML")
        elif isinstance(default, bool):
            p.add_argument(flag, type=_bool, metavar="true|false", help=help_text)
        elif name == "time_limit":
            p.add_argument(flag, type=lambda s: None if s.lower() == "none" else float(s), default=_UNSET,
                           help=help_text + "; 'none' for no limit")
        else:
            kind = type(default) if default is not None else str
            p.add_argument(flag, type=kind, help=help_text)
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    action, rest = (args.action[0], args.action[1:]) if args.action else ("run", [])
    if action not in ACTIONS:
        raise unknown_name_error("action", action, ACTIONS)
    if action == "compare":
        if len(rest) != 2:
            raise ValueError(f"compare takes two result directories, got {len(rest)}: {rest}")
        print(compare(rest[0], rest[1], seed=args.seed))
        return 0
    if action == "report":
        if len(rest) != 1:
            raise ValueError(f"report takes one result directory, got {len(rest)}: {rest}")
        print(markdown(write_reports(rest[0], seed=args.seed), plots=_plots_or_say_why()))
        return 0
    if rest:
        raise ValueError(f"unexpected arguments {rest}; options go after --, e.g. --agent oracle")
    return _run(args)


def _plots_or_say_why() -> bool:
    """Whether plots can be drawn; if not, say so on stderr (the rest of the reports are written)."""
    if not available():
        print("toolgym bench: plots skipped: matplotlib is not installed. Install it with: pip install "
              "'toolgym[bench]', then `toolgym bench report DIR` draws them.", file=sys.stderr)
        return False
    return True


def file_values(path: str) -> dict:
    """The BenchConfig fields of a YAML file: a bench config, or the ``bench:`` section of a train
    config; an unknown key is an error naming the closest field."""
    from toolgym.envs.yaml_values import load_yaml

    try:
        data = load_yaml(Path(path).read_text())
    except OSError as e:
        raise FileNotFoundError(f"--config {path}: cannot read it ({e.strerror}); give a YAML file of bench fields "
                                "or a train config with a bench: section") from None
    if isinstance(data, dict) and "bench" in data and "model" in data and "envs" in data:
        data = data["bench"]  # a train config: its benchmark section
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a mapping of bench fields (agent, envs, n, ...), got "
                         f"{type(data).__name__}")
    names = [name for name, _, _ in config_fields()]
    for key in data:
        if key not in names:
            raise unknown_name_error(f"bench field in {path}", key, names)
    return data


def _run(args: argparse.Namespace) -> int:
    values = file_values(args.config) if args.config else {}
    for name, _, _ in config_fields():
        given = getattr(args, name)
        if name in ("env_kwargs", "chat_template_kwargs", "request_options"):  # the flag's pairs add to the file's
            values[name] = {**values.get(name, {}), **parse_overrides(given)}
        elif given is not None and given is not _UNSET:
            values[name] = given
    config = BenchConfig(**values)
    for env_id in config.envs:  # an unknown id or kwarg: one line now, not after the first env ran
        check_env_args(env_id, config.kwargs_for(env_id))
    plots = config.reports and _plots_or_say_why()
    try:
        results = run_benchmark(config)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished episodes are in {config.out}/episodes.jsonl; rerun the same command "
              "to continue.", file=sys.stderr)
        return 130
    metric = "em" if any("em" in c["metrics"] for per in results["cells"].values() for c in per.values()) else "success"
    print(search_r1_table(results, metric) if config.suite == "search-r1" else main_table(results, metric))
    written = ["episodes.jsonl", "manifest.json"]
    if config.reports:
        written += ["results.md", "results.json", "predictions/"] + (["plots/"] if plots else [])
    print(f"\nwritten to {config.out}/ ({', '.join(written)})" +
          ("" if config.reports else f"; reports off: `toolgym bench report {config.out}` writes them"))
    return 0
