"""Real-data loaders and corpora on the shared dev samples: sizes, load time, oracle evidence.

    python perf/dataset_loading.py [--data ../shared/data]

Prints a Markdown table: examples, context paragraphs, pooled passages after de-duplication,
the time to load and normalise the file, and, for an oracle that searches each gold title in hop
order with BM25 top-3 (the env's default), the share of gold passages it finds and its EM, with
corpus="example" and corpus="pooled".
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

FILES = {
    "hotpotqa": "hotpotqa_dev_distractor.sample.json",
    "2wikimultihopqa": "2wikimultihopqa_dev.sample.json",
    "musique": "musique_ans_dev.sample.jsonl",
}


def oracle(env_id: str, path: Path, corpus: str) -> tuple[float, float]:
    import gymnasium as gym

    import toolgym  # noqa: F401

    env = gym.make(env_id, data_files=path, corpus=corpus)
    u = env.unwrapped
    found = needed = em = 0
    for i, example in enumerate(u.examples):
        env.reset(seed=0, options={"index": i})
        while True:
            _, _, terminated, truncated, info = env.step(u.oracle_action())
            if terminated or truncated:
                break
        found += len(info["found_supporting"])
        needed += len(example.supporting_idxs) or len(set(example.supporting_titles))
        em += info["result"]["extras"]["qa"]["em"]
    return found / needed, em / len(u.examples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("TOOLGYM_CACHE", tempfile.mkdtemp(prefix="toolgym-perf-"))

    from toolgym.envs.multihop_qa.corpus import pooled_corpus
    from toolgym.envs.multihop_qa.datasets import load_examples

    env_ids = {"hotpotqa": "HotpotQA-v0", "2wikimultihopqa": "TwoWikiMultihopQA-v0", "musique": "MuSiQue-v0"}
    print("| dataset | examples | context paragraphs | pooled passages | load ms (median) "
          "| oracle gold found / EM, example | oracle gold found / EM, pooled |")
    print("|---|---|---|---|---|---|---|")
    for name, file in FILES.items():
        path = args.data / file
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            examples = load_examples(name, data_files=path)
            times.append((time.perf_counter() - start) * 1000)
        paragraphs = sum(len(e.context) for e in examples)
        pool = pooled_corpus(examples)
        cells = []
        for corpus in ("example", "pooled"):
            found, em = oracle(env_ids[name], path, corpus)
            cells.append(f"{found:.3f} / {em:.2f}")
        print(f"| {name} | {len(examples)} | {paragraphs} | {len(pool)} | {statistics.median(times):.1f} "
              f"| {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
