"""Throughput of the benchmark runner: the oracle on the synthetic MultiHopQA env, episodes/s.

The runner must never be the bottleneck (target >= 500 episodes/s on 2 cores). Compares the full
runner (JSONL store, records, progress bookkeeping) with a bare env loop over the same episodes,
so the runner's own overhead is visible, and profiles where the time goes.

    python perf/bench_runner.py [--n 2000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import tempfile
import time

import gymnasium as gym

import toolgym  # noqa: F401
from toolgym.benchmarks import BenchConfig, run_benchmark
from toolgym.envs.scripted import OracleAgent, run_episode


def bare_loop(env_id: str, n: int) -> float:
    env = gym.make(env_id)
    agent = OracleAgent()
    start = time.perf_counter()
    for i in range(n):
        run_episode(env, agent, seed=i)
    return n / (time.perf_counter() - start)


def runner(env_id: str, n: int, batch_size: int, env_kwargs: dict | None = None) -> float:
    with tempfile.TemporaryDirectory() as out:
        config = BenchConfig(agent="oracle", envs=[env_id], n=n, out=out, batch_size=batch_size, progress=False,
                             reports=False, env_kwargs=env_kwargs or {})
        start = time.perf_counter()
        run_benchmark(config)
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3, help="each row is the median of this many passes")
    parser.add_argument("--profile", action="store_true", help="print the top functions of one runner pass")
    args = parser.parse_args()
    env_id = "MultiHopQA-v0"
    gym.make(env_id).reset(seed=0)  # build the world and its index once, outside the timings
    runner(env_id, 20, 4)  # warm imports

    load = os.getloadavg()[0]
    print(f"cores: {os.cpu_count()}, load average: {load:.1f}, episodes: {args.n}, env: {env_id} (oracle), "
          f"median of {args.repeats}\n")
    print("| loop | batch | episodes/s |")
    print("|---|---|---|")
    def median(fn, *a):
        return statistics.median(fn(*a) for _ in range(args.repeats))

    print(f"| bare env loop (run_episode) | 1 | {median(bare_loop, env_id, args.n):.0f} |")
    for batch in (1, 16, 64):
        print(f"| toolgym bench runner | {batch} | {median(runner, env_id, args.n, batch):.0f} |")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        runner(env_id, args.n, 16)
        profiler.disable()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(15)
        print("\nTop functions by own time (runner, batch 16):")
        print(stream.getvalue())


if __name__ == "__main__":
    main()
