"""How much the env adds to a search: ``step()`` against a bare BM25 query of the same text.

For synthetic worlds of about 1k, 10k and 100k passages, times (a) ``env.step(search call)``,
(b) the env's own retriever alone (``retriever.search([query], k)``, toolgym's exact-MaxScore BM25),
(c) a bare query of the bm25s library on the same index (``bm25s.tokenize`` + ``BM25.retrieve``,
the issue's yardstick), on the same queries, and ``reset()`` after the first. Prints a Markdown
table. Target: the env adds at most 30% over the bare query at 100k passages, and ``reset()``
costs under 1 ms.

    python perf/env_step.py                 # all sizes (the 100k world takes a few minutes to build)
    python perf/env_step.py --sizes 1k 10k  # a quicker run
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym

import toolgym  # noqa: F401

# World settings that give about the named number of passages.
SIZES = {
    "1k": {"n_people": 250},
    "10k": {"n_people": 2400},
    "100k": {"n_people": 8000, "distractors": 5.0},
}


def median_ms(samples: list[float]) -> float:
    return 1000 * statistics.median(samples)


def measure(world: dict, repeats: int) -> dict:
    start = time.perf_counter()
    env = gym.make("MultiHopQA-v0", world=world).unwrapped
    build = time.perf_counter() - start
    retriever, k = env.search_tool.retriever, env.search_tool.k
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")

    def bm25s_query(text: str):
        tokens = bm25s.tokenize([text], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
        return retriever._index.retrieve(tokens, k=k, show_progress=False, n_threads=1)

    steps, bare, library, resets = [], [], [], []
    env.reset(seed=0)
    for i in range(repeats):
        t0 = time.perf_counter()
        env.reset(seed=i)
        resets.append(time.perf_counter() - t0)
        query = env.example.supporting_titles[0] + " " + env.example.question
        action = env.call("search", query=query)
        # Alternate which runs first, so neither always finds the query's postings warm in cache.
        order = ("step", "bare", "bm25s") if i % 2 else ("bm25s", "bare", "step")
        for what in order:
            t0 = time.perf_counter()
            if what == "step":
                env.step(action)
                steps.append(time.perf_counter() - t0)
            elif what == "bare":
                retriever.search([query], k)
                bare.append(time.perf_counter() - t0)
            else:
                bm25s_query(query)
                library.append(time.perf_counter() - t0)
    return {
        "passages": len(env.passages),
        "build_s": build,
        "step_ms": median_ms(steps),
        "bare_ms": median_ms(bare),
        "bm25s_ms": median_ms(library),
        "reset_ms": median_ms(resets),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    print("| passages | world build (s) | step p50 (ms) | env's BM25 query p50 (ms) | step / that query "
          "| bare bm25s query p50 (ms) | step / bm25s query | reset p50 (ms) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        r = measure(SIZES[size], args.repeats)
        print(f"| {r['passages']:,} | {r['build_s']:.1f} | {r['step_ms']:.3f} | {r['bare_ms']:.3f} | "
              f"{r['step_ms'] / r['bare_ms']:.2f} | {r['bm25s_ms']:.3f} | {r['step_ms'] / r['bm25s_ms']:.2f} | "
              f"{r['reset_ms']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
