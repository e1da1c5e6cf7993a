"""Loading a question/answer-only set of 100k questions: time and peak memory.

    python perf/qa_loading.py [--n 100000] [--repeats 3]

Generates files of ``--n`` questions in FlashRAG's JSONL layout (``{id, question, golden_answers,
metadata}``, as NQ's or TriviaQA's train files), the same gzipped, and Search-R1's parquet layout,
then loads each with ``load_examples`` in a fresh process and prints a Markdown table: the median
wall and CPU time of the load and the peak RSS of the load above what the process held after its
imports (target: under 10 s and 500 MB for 100k questions). On a shared machine the CPU column is
the one to compare; the wall time includes waiting for a core.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# Peak RSS of the load alone: the kernel's high-water mark is reset after the imports (Linux
# /proc/self/clear_refs), then read against the RSS at that point.
_CHILD = r"""
import json, sys, time
from toolgym.envs.multihop_qa.datasets import load_examples

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key + ":")) / 1024

with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
base = status("VmRSS")
start = time.perf_counter(), time.process_time()
examples = load_examples(sys.argv[1], "test", data_files=sys.argv[2])
wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
print(json.dumps({"n": len(examples), "seconds": wall, "cpu": cpu, "peak_mb": status("VmHWM") - base}))
"""

_WORDS = ("who what when where which river city film album president capital wrote born founded "
          "played won team river mountain novel singer country first largest song war").split()


def _records(n: int):
    for i in range(n):
        words = [_WORDS[(i * 7 + j * 13) % len(_WORDS)] for j in range(6 + i % 9)]
        answers = [f"Answer {i}"] + [f"alias {i}-{k}" for k in range(i % 3)]
        yield {"id": f"train_{i}", "question": " ".join(words).capitalize() + f" number {i}?",
               "golden_answers": answers, "metadata": {"pop": i % 1000}}


def write_files(folder: Path, n: int) -> dict[str, Path]:
    flashrag = folder / "train.jsonl"
    with open(flashrag, "w") as fh:
        for record in _records(n):
            fh.write(json.dumps(record) + "\n")
    gz = folder / "train.jsonl.gz"
    gz.write_bytes(gzip.compress(flashrag.read_bytes(), compresslevel=1))
    files = {"FlashRAG JSONL": flashrag, "FlashRAG JSONL .gz": gz}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return files
    prefix = "Answer the given question. Search with <search> query </search>. Question: "
    rows = [{"data_source": "nq", "prompt": [{"role": "user", "content": prefix + r["question"] + "\n"}],
             "ability": "fact-reasoning",
             "reward_model": {"style": "rule", "ground_truth": {"target": r["golden_answers"]}},
             "extra_info": {"split": "train", "index": i}} for i, r in enumerate(_records(n))]
    parquet = folder / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    files["Search-R1 parquet"] = parquet
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(repo)}
    with tempfile.TemporaryDirectory(prefix="toolgym-qa-perf-") as tmp:
        files = write_files(Path(tmp), args.n)
        print(f"| layout ({args.n:,} questions) | file MB | load s, wall (median of {args.repeats}) | load s, CPU "
              "| peak RSS MB above imports |")
        print("|---|---|---|---|---|")
        for name, path in files.items():
            runs = []
            for _ in range(args.repeats):
                done = subprocess.run([sys.executable, "-c", _CHILD, "nq", str(path)], capture_output=True,
                                      text=True, env=env, cwd=repo, check=True)
                runs.append(json.loads(done.stdout))
            assert all(r["n"] == args.n for r in runs), runs
            seconds = statistics.median(r["seconds"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            peak = statistics.median(r["peak_mb"] for r in runs)
            print(f"| {name} | {path.stat().st_size / 2**20:.1f} | {seconds:.2f} | {cpu:.2f} | {peak:.0f} |")


if __name__ == "__main__":
    main()
