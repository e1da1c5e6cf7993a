"""Scripted agents on ToolMath-v0, SQLQuery-v0 and Wordle-v0: returns, success and env speed.

    python perf/suite_envs.py --episodes 200

Prints a Markdown table: the oracle (must reach success 1.0) and, for Wordle, a feedback-using
solver that guesses the first word consistent with every pattern seen (no knowledge of the secret).
Episodes/s includes reset and the agent's own work.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym

import toolgym  # noqa: F401 - registers the ids
from toolgym.envs.wordle.game import consistent, load_words


def oracle(env):
    return env.unwrapped.oracle_action()


def wordle_solver(env):
    answers, _ = load_words()
    word = consistent(answers, [tuple(h) for h in env.unwrapped.game.history])[0]
    return f'<tool_call>{{"name": "guess", "arguments": {{"word": "{word}"}}}}</tool_call>'


def run(env_id: str, agent, episodes: int) -> dict[str, float]:
    env = gym.make(env_id)
    env.reset(seed=0)  # builds caches (the SQL database) outside the timing
    totals = {"return": 0.0, "success": 0.0, "turns": 0.0}
    start = time.perf_counter()
    for seed in range(episodes):
        env.reset(seed=seed)
        terminated = truncated = False
        while not (terminated or truncated):
            _, reward, terminated, truncated, info = env.step(agent(env))
            totals["return"] += reward
        totals["success"] += info["result"]["success"]
        totals["turns"] += info["turn"]
    rate = episodes / (time.perf_counter() - start)
    return {**{k: v / episodes for k, v in totals.items()}, "eps_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    args = parser.parse_args()
    rows = [("ToolMath-v0", "oracle", oracle), ("SQLQuery-v0", "oracle", oracle),
            ("Wordle-v0", "oracle", oracle), ("Wordle-v0", "feedback solver", wordle_solver)]
    print(f"{args.episodes} episodes (seeds 0..{args.episodes - 1}), hermes format\n")
    print("| env | agent | success | mean return | mean turns | episodes/s |")
    print("|---|---|---|---|---|---|")
    for env_id, name, agent in rows:
        r = run(env_id, agent, args.episodes)
        print(f"| {env_id} | {name} | {r['success']:.3f} | {r['return']:.3f} | {r['turns']:.2f} | {r['eps_per_s']:.0f} |")


if __name__ == "__main__":
    main()
