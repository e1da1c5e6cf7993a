"""The episode viewer at scale: a real bench file of N episodes, its HTML page, and the page opened and
filtered in headless Chromium (targets: HTML under 25 MB, open + filter under 1 s at 10,000 episodes).

The bench file comes from `toolgym bench --agent oracle` on the four offline envs (N/4 episodes each,
every record whole: conversation, tool calls, reward terms). Each browser row loads the page with a
filter in its URL hash; the page writes its own performance.now() marks into the DOM, read back with
--dump-dom: `html` is the time until the page's script starts (reading the HTML and the data in it),
`json` parsing the data, `filter` applying the hash's filter (text search over every conversation,
or a column), `open` everything until the table and the first conversation are built (since
navigation start: what a person waits for).

    python perf/view_scale.py [--episodes 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from toolgym.benchmarks import BenchConfig, run_benchmark
from toolgym.viewer.browser import MISSING, dump_dom, find_chromium
from toolgym.viewer.page import write_page

ENVS = ["MultiHopQA-v0", "ToolMath-v0", "SQLQuery-v0", "Wordle-v0"]
FILTERS = [("none", ""), ("text search 'vozel'", "q=vozel"), ("env + sort by time", "env=Wordle-v0&sort=time-desc"),
           ("solved + text 'price'", "success=1&q=price")]
MARKS = ("html", "json", "filter", "ready")


def marks(dom: str) -> dict[str, float]:
    tag = re.search(r'<div id="perf"[^>]*>', dom).group(0)
    out = {k: float(re.search(rf'data-{k}-ms="([\d.]+)"', tag).group(1)) for k in MARKS}
    out["shown"] = int(re.search(r'data-shown="(\d+)"', dom).group(1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=10_000, help="episodes in the bench file")
    parser.add_argument("--repeats", type=int, default=3, help="page loads per filter (the median is shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench"
        start = time.perf_counter()
        run_benchmark(BenchConfig(agent="oracle", envs=ENVS, n=max(args.episodes // len(ENVS), 1), out=str(out),
                                  batch_size=64, progress=False, reports=False))
        bench_s = time.perf_counter() - start
        start = time.perf_counter()
        page, n = write_page(out)
        build_s = time.perf_counter() - start
        jsonl_mb, html_mb = (out / "episodes.jsonl").stat().st_size / 1e6, page.stat().st_size / 1e6
        load = os.getloadavg()[0]
        print(f"cores: {os.cpu_count()}, load average: {load:.1f}; {n} episodes ({', '.join(ENVS)}, oracle): "
              f"bench {bench_s:.1f} s, episodes.jsonl {jsonl_mb:.1f} MB\n")
        print("| episodes | HTML MB | build s |\n|---:|---:|---:|")
        print(f"| {n} | {html_mb:.1f} | {build_s:.2f} |\n")
        if find_chromium() is None:
            print(f"browser times skipped: {MISSING}")
            return
        print("| filter (URL hash) | shown | html ms | json ms | filter ms | open + filter ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, fragment in FILTERS:
            runs = [marks(dump_dom(page, fragment)) for _ in range(args.repeats)]
            med = {k: statistics.median(r[k] for r in runs) for k in MARKS}
            print(f"| {name} | {runs[0]['shown']} | {med['html']:.0f} | {med['json']:.0f} | {med['filter']:.0f} | "
                  f"{med['ready']:.0f} |")


if __name__ == "__main__":
    main()
