"""How long one ``step()`` can take on hostile text: the fuzz corpus of the tests, timed per id.

    python perf/step_fuzz.py                       # every id, both formats, 300 actions each
    python perf/step_fuzz.py --ids ToolMath-v0 --examples 1000

The actions are those of ``tests/envs/test_registry.py``: the step() fuzz strategy (big numbers,
nested JSON in strings, lone surrogates, numeric answer bombs, reasoning blocks in odd spacing,
random text and call fragments), drawn deterministically, plus every case of its ``HOSTILE``
table; envs are built as the tests build them (``max_action_chars=100_000``, the shared data
samples for the real-data ids). Prints a Markdown table of the median, p99 and maximum step time
per id and format, and the action of the slowest step. The tests assert that no step raises; the
bound on time is read here (SQLQuery-v0's own budget is ``max_seconds=2`` per query).
"""

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fuzz_times(env, strategy, examples: int) -> list[tuple[float, str]]:
    """(seconds, action) of every step over ``examples`` derandomized draws of ``strategy``."""
    from hypothesis import HealthCheck, given, settings

    times = []

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(actions=strategy)
    def run(actions):
        env.reset(seed=1)
        for action in actions:
            start = time.perf_counter()
            env.step(action)
            times.append((time.perf_counter() - start, action))

    run()
    return times


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", default=None, help="comma-separated ids (default: every registered id)")
    parser.add_argument("--formats", default="hermes,tags")
    parser.add_argument("--examples", type=int, default=300, help="fuzzed action lists per id and format")
    args = parser.parse_args(argv)

    import gymnasium as gym

    import toolgym  # noqa: F401
    from toolgym.envs.registration import env_ids

    tests = _load("registry_tests", ROOT / "tests" / "envs" / "test_registry.py")
    conftest = _load("root_conftest", ROOT / "tests" / "conftest.py")
    data = conftest.shared_data_dir()

    rows = []
    for env_id in args.ids.split(",") if args.ids else env_ids():
        if env_id in conftest.SAMPLES and data is None:
            print(f"skipping {env_id}: the shared data samples are not found", file=sys.stderr)
            continue
        kwargs = ({"data_files": str(data / conftest.SAMPLES[env_id])} if env_id in conftest.SAMPLES
                  else dict(conftest.SMALL.get(env_id, {})))
        for fmt in args.formats.split(","):
            times: list[tuple[float, str]] = []
            for template, extra in tests.HOSTILE.values():
                env = gym.make(env_id, format=fmt, **{**kwargs, "max_action_chars": 100_000, **extra})
                env.reset(seed=1)
                action = tests._hostile_action(env, template)
                start = time.perf_counter()
                env.step(action)
                times.append((time.perf_counter() - start, action))
            env = gym.make(env_id, format=fmt, max_action_chars=100_000, **kwargs)
            times += fuzz_times(env, tests.st.lists(tests._ACTIONS, min_size=1, max_size=4), args.examples)
            durations = sorted(t for t, _ in times)
            slowest = max(times)
            rows.append((env_id, fmt, len(times), 1000 * statistics.median(durations),
                         1000 * durations[int(0.99 * (len(durations) - 1))], 1000 * slowest[0],
                         repr(slowest[1][:60]) + (f"... ({len(slowest[1]):,} chars)" if len(slowest[1]) > 60 else "")))
            print(f"{env_id} {fmt}: max {1000 * slowest[0]:.1f} ms", file=sys.stderr, flush=True)

    print("\n| id | format | steps | p50 ms | p99 ms | max ms | slowest action |")
    print("|---|---|---|---|---|---|---|")
    for env_id, fmt, n, p50, p99, worst, action in rows:
        print(f"| {env_id} | {fmt} | {n} | {p50:.2f} | {p99:.1f} | {worst:.1f} | `{action}` |")


if __name__ == "__main__":
    main()
