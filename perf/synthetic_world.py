"""The synthetic world at several sizes: corpus, questions, necessity-check rejections, build time.

    python perf/synthetic_world.py                       # n_people 400 (the default), 1200, 4700
    python perf/synthetic_world.py --n-people 400 --distractors 0 1 3

Prints a Markdown table: passages, questions per split, the share of candidate questions the
necessity check dropped, the share of gold titles an oracle finds at BM25 top-1 / top-3 by
searching the title (what the oracle agent does), and the cold build time (one fresh process
state, empty index cache), which includes the BM25 index and the batched leak check.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def measure(n_people: int, distractors: float, seed: int) -> dict:
    from toolgym.envs.multihop_qa.synthetic import SPLITS, SyntheticWorld, WorldConfig

    start = time.perf_counter()
    world = SyntheticWorld(WorldConfig(seed=seed, n_people=n_people, distractors=distractors))
    build = time.perf_counter() - start
    questions = [q for split in SPLITS for q in world.questions(split)]
    titles = sorted({t for q in questions for t in q.supporting_titles})
    hits = world.retriever.search(titles, k=3)
    top1 = sum(bool(h) and h[0].passage.title == t for t, h in zip(titles, hits)) / len(titles)
    top3 = sum(t in [x.passage.title for x in h] for t, h in zip(titles, hits)) / len(titles)
    stats = world.stats()
    return {**stats, "build_s": build, "top1": top1, "top3": top3,
            "rejected_pct": 100 * stats["rejected"] / (stats["rejected"] + len(questions))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-people", type=int, nargs="+", default=[400, 1200, 4700])
    parser.add_argument("--distractors", type=float, nargs="+", default=[1.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["TOOLGYM_CACHE"] = tempfile.mkdtemp(prefix="toolgym-perf-")  # cold index cache
    print("| n_people | distractors | passages | train | validation | test | rejected by the check | "
          "title search top-1 | top-3 | build (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.n_people:
        for d in args.distractors:
            r = measure(n, d, args.seed)
            print(f"| {n:,} | {d:g} | {r['passages']:,} | {r['train']:,} | {r['validation']:,} | {r['test']:,} | "
                  f"{r['rejected_pct']:.1f}% | {r['top1']:.3f} | {r['top3']:.3f} | {r['build_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
