"""Benchmarks of tool-using agents on toolgym envs: agents, a resumable runner, metrics, reports.

    from toolgym.benchmarks import BenchConfig, run_benchmark
    results = run_benchmark(BenchConfig(agent="oracle", envs=["MultiHopQA-v0"], n=100, out="results/"))

Importing this package is cheap; models (torch, transformers, vLLM, HTTP) load when an agent needs them.
"""

from toolgym.benchmarks.agents import AGENTS, Action, Agent, Slot, make_agent, register_agent
from toolgym.benchmarks.reports import build_results, compare, write_reports
from toolgym.benchmarks.runner import BenchConfig, run_benchmark
from toolgym.benchmarks.store import EpisodeStore

__all__ = [
    "AGENTS", "Action", "Agent", "BenchConfig", "EpisodeStore", "Slot", "build_results", "compare", "make_agent",
    "register_agent", "run_benchmark", "write_reports",
]
