"""``toolgym envs``, ``toolgym play`` and ``toolgym episodes``: look at the envs from a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import gymnasium as gym

from toolgym.envs.errors import unknown_name_error
from toolgym.envs.record import EpisodeLog, RecordWriter, record_fields, result_fields
from toolgym.envs.registration import ENVS, check_env_args
from toolgym.envs.result import EpisodeResult
from toolgym.envs.scripted import SCRIPTED_AGENTS, run_episode


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["top_k=5", "world={n_people: 50}"]`` -> ``{"top_k": 5, "world": {"n_people": 50}}`` (values are YAML)."""
    # PyYAML takes about 0.1 s to import: `toolgym envs` and `--help` parse no values
    from toolgym.envs.yaml_values import load_yaml

    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {pair!r} (for example top_k=5).")
        result[key.strip()] = load_yaml(value)
    return result


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("envs", help="list the registered env ids")
    p.set_defaults(handler=_envs)

    p = subparsers.add_parser("play", help="play an episode in the terminal: type actions, see observations and rewards")
    p.add_argument("env_id", nargs="?", default="MultiHopQA-v0")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--kwargs", nargs="*", metavar="KEY=VALUE", help="env constructor arguments, e.g. format=tags")
    p.set_defaults(handler=_play)

    p = subparsers.add_parser(
        "episodes", help="run scripted agents (the oracle; on search tasks also naive-search and no-search) and print their scores"
    )
    p.add_argument("env_id", nargs="?", default="MultiHopQA-v0")
    p.add_argument("-n", "--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agents", default=None, help="comma-separated; default: every agent that applies")
    p.add_argument("--markdown", action="store_true",
                   help="print the table as Markdown without the speed column (README's scripted-agents table)")
    p.add_argument("--kwargs", nargs="*", metavar="KEY=VALUE", help="env constructor arguments, e.g. format=tags")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="also append every episode, stored whole, to this episodes.jsonl (`toolgym view FILE` shows them)")
    p.set_defaults(handler=_episodes)


def _envs(args: argparse.Namespace) -> int:
    width = max(len(env_id) for env_id, *_ in ENVS)
    for env_id, _, _, summary in ENVS:
        print(f"{env_id:<{width}}  {summary}")
    return 0


def _make(env_id: str, kwargs: dict[str, Any]):
    check_env_args(env_id, kwargs)  # an unknown id or kwarg: one line naming the closest, not a traceback
    return gym.make(env_id, **kwargs)


def _play(args: argparse.Namespace) -> int:
    env = _make(args.env_id, parse_overrides(args.kwargs))
    obs, info = env.reset(seed=args.seed)
    shown = 0
    print(f"{args.env_id}: type the assistant's message; end it with an empty line. Ctrl-D quits.\n")
    # Bold role names on a terminal only: a pipe or a file gets plain text.
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    total = 0.0
    while True:
        for message in obs[shown:]:
            print(f"{bold}[{message['role']}]{plain}\n{message['content']}\n")
        lines = []
        ended = False
        try:
            while (line := input("> " if not lines else ". ")) != "":
                lines.append(line)
        except EOFError:  # the end of input also ends a message typed (or piped) without an empty line
            print()
            ended = True
            if not lines:
                return 0
        action = "\n".join(lines)
        shown = len(obs) + 1  # the assistant message just typed is not echoed back
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        print(f"reward {reward:+.3f}  terms {json.dumps(info['reward_terms'])}")
        for key in ("parse_error", "tool_error"):
            if info.get(key):
                print(f"{key}: {info[key]}")
        if terminated or truncated:
            print(f"\nepisode over ({'terminated' if terminated else 'truncated: ' + str(info.get('truncated_by'))}), "
                  f"return {total:+.3f}")
            print(json.dumps({k: v for k, v in info.items() if k != "reward_terms"}, indent=2))
            return 0
        if ended:
            return 0


def _episodes(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # about 0.1 s to import: only this command needs it

    env = _make(args.env_id, parse_overrides(args.kwargs))
    tools = {tool.name for tool in env.unwrapped.tools}
    # The model-free floors search and answer: they apply to the search tasks only.
    default = "oracle,naive-search,no-search" if "search" in tools else "oracle"
    names = [a.strip() for a in (args.agents or default).split(",") if a.strip()]
    for name in names:
        if name not in SCRIPTED_AGENTS:
            raise unknown_name_error("agent", name, SCRIPTED_AGENTS)
        if name != "oracle" and "search" not in tools:
            raise ValueError(f"agent {name!r} needs a search tool; {args.env_id} has {sorted(tools)}. Use --agents oracle.")
    print(f"{args.env_id}, {args.episodes} episodes per agent, seed {args.seed}\n")
    if args.markdown:
        print("| agent | EM | F1 | return | tool calls | turns | evidence recall |\n|---|---:|---:|---:|---:|---:|---:|")
    else:
        print(f"{'agent':<14} {'EM':>6} {'F1':>6} {'return':>7} {'tool calls':>10} {'turns':>6} {'evidence':>8} {'eps/s':>7}")
    writer = RecordWriter(args.out) if args.out else None
    for name in names:
        agent = SCRIPTED_AGENTS[name]()
        infos = []
        start = time.perf_counter()
        for i in tqdm(range(args.episodes), desc=name, leave=False, file=sys.stderr, disable=None):
            log = EpisodeLog() if writer is not None else None
            info = run_episode(env, agent, seed=args.seed + i, log=log)
            # The EM and F1 columns are the result's success and score: exact match and F1 on QA.
            result = EpisodeResult.from_info(info)
            if writer is not None:
                writer.append(_record(args.env_id, name, i, args.seed + i, info, result, log))
            info["em"], info["f1"] = float(result.success), result.score
            gold = len(getattr(env.unwrapped, "example", None).supporting_titles) if "found_supporting" in info else 0
            info["evidence"] = len(info["found_supporting"]) / gold if gold else None
            infos.append(info)
        rate = args.episodes / (time.perf_counter() - start)

        def mean(key, width, digits, infos=infos):
            values = [i[key] for i in infos if i.get(key) is not None]
            return f"{sum(values) / len(values):>{width}.{digits}f}" if values else f"{'-':>{width}}"

        if args.markdown:
            print(f"| {name} | {mean('em', 0, 3)} | {mean('f1', 0, 3)} | {mean('return', 0, 3)} | "
                  f"{mean('tool_calls', 0, 2)} | {mean('turn', 0, 2)} | {mean('evidence', 0, 2)} |")
        else:
            print(f"{name:<14} {mean('em', 6, 3)} {mean('f1', 6, 3)} {mean('return', 7, 3)} {mean('tool_calls', 10, 2)} "
                  f"{mean('turn', 6, 2)} {mean('evidence', 8, 2)} {rate:>7.0f}")
    if writer is not None:
        writer.close()
        print(f"\nepisodes stored in {args.out}: toolgym view {args.out}")
    return 0


def _record(env_id: str, agent: str, index: int, seed: int, info: dict, result: EpisodeResult | None,
            log: EpisodeLog) -> dict[str, Any]:
    """The episode record (toolgym/envs/record.py) of one scripted episode."""
    return {
        **record_fields("episodes"), "env": env_id, "agent": agent, "index": index, "seed": seed,
        "status": "terminated" if info["terminated"] else "truncated", **result_fields(result),
        "return": float(info["return"]), "turns": int(info.get("turn", len(log.steps))),
        "tool_calls": int(info.get("tool_calls", 0)), "tokens_in": 0, "tokens_out": 0,
        "wall_time": round(sum(s["seconds"] for s in log.steps), 6), **log.fields(None),
    }
