"""``toolgym envs``, ``toolgym play`` and ``toolgym episodes``: look at the envs from a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["top_k=5", "world={n_people: 50}"]`` -> ``{"top_k": 5, "world": {"n_people": 50}}`` (values are YAML)."""
    import yaml

    result: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"toolgym: expected key=value, got {pair!r} (for example top_k=5).")
        result[key.strip()] = yaml.safe_load(value)
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
        "episodes", help="run scripted MultiHopQA agents (oracle, naive-search, no-search) and print their scores"
    )
    p.add_argument("env_id", nargs="?", default="MultiHopQA-v0")
    p.add_argument("-n", "--episodes", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--agents", default="oracle,naive-search,no-search")
    p.add_argument("--kwargs", nargs="*", metavar="KEY=VALUE", help="env constructor arguments, e.g. format=tags")
    p.set_defaults(handler=_episodes)


def _envs(args: argparse.Namespace) -> int:
    from toolgym.envs.registration import ENVS

    width = max(len(env_id) for env_id, *_ in ENVS)
    for env_id, _, _, summary in ENVS:
        print(f"{env_id:<{width}}  {summary}")
    return 0


def _make(env_id: str, kwargs: dict[str, Any]):
    import gymnasium as gym

    import toolgym  # noqa: F401 - registers the ids

    return gym.make(env_id, **kwargs)


def _play(args: argparse.Namespace) -> int:
    env = _make(args.env_id, parse_overrides(args.kwargs))
    obs, info = env.reset(seed=args.seed)
    shown = 0
    print(f"{args.env_id}: type the assistant's message; end it with an empty line. Ctrl-D quits.\n")
    total = 0.0
    while True:
        for message in obs[shown:]:
            print(f"\033[1m[{message['role']}]\033[0m\n{message['content']}\n")
        lines = []
        try:
            while (line := input("> " if not lines else ". ")) != "":
                lines.append(line)
        except EOFError:
            print()
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


def _episodes(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from toolgym.envs.multihop_qa.scripted import SCRIPTED_AGENTS, run_episode

    env = _make(args.env_id, parse_overrides(args.kwargs))
    names = [a.strip() for a in args.agents.split(",") if a.strip()]
    for name in names:
        if name not in SCRIPTED_AGENTS:
            from toolgym.envs.errors import unknown_name_error

            raise SystemExit(f"toolgym: {unknown_name_error('agent', name, SCRIPTED_AGENTS)}")
    print(f"{args.env_id}, {args.episodes} episodes per agent, seed {args.seed}\n")
    header = f"{'agent':<14} {'EM':>6} {'F1':>6} {'return':>7} {'searches':>8} {'evidence':>8} {'eps/s':>7}"
    rows = []
    for name in names:
        agent = SCRIPTED_AGENTS[name]()
        totals = {"em": 0.0, "f1": 0.0, "return": 0.0, "tool_calls": 0.0, "evidence": 0.0}
        start = time.perf_counter()
        for i in tqdm(range(args.episodes), desc=name, leave=False, file=sys.stderr):
            info = run_episode(env, agent, seed=args.seed + i)
            for key in ("em", "f1", "return", "tool_calls"):
                totals[key] += info[key]
            gold = max(1, len(env.unwrapped.example.supporting_titles))
            totals["evidence"] += len(info["found_supporting"]) / gold
        rate = args.episodes / (time.perf_counter() - start)
        n = args.episodes
        rows.append(f"{name:<14} {totals['em']/n:>6.3f} {totals['f1']/n:>6.3f} {totals['return']/n:>7.3f} "
                    f"{totals['tool_calls']/n:>8.2f} {totals['evidence']/n:>8.2f} {rate:>7.0f}")
    print(header)
    print("\n".join(rows))
    return 0
