"""Every ``perf/`` script runs at its smallest size and prints its Markdown table.

Speed is read from the scripts' tables, never asserted here: this only keeps them working as the
code they measure changes. Each runs in its own process, as a user runs it, on this checkout.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PERF = REPO / "perf"
# perf/_*.py are helpers the scripts share, not scripts.
SCRIPTS = sorted(p.name for p in PERF.glob("*.py") if not p.name.startswith("_"))

# The smallest arguments of each script. {data}: the shared dev samples; {run}: a `toolgym demo`
# output directory holding a warm model.
SMOKE: dict[str, list[str]] = {
    "bench_runner.py": ["--n", "10", "--repeats", "1"],
    "copy_learning.py": ["--task", "pure", "--worlds", "1", "--steps", "2", "--every", "1", "--batch", "4",
                         "--vocab", "400", "--hidden", "32", "--heads", "2", "--kv-heads", "1"],
    "credit_step.py": ["--smoke", "--rounds", "1"],
    "dataset_loading.py": ["--data", "{data}", "--repeats", "1"],
    "demo_failures.py": ["{run}", "--warm-only", "--questions", "2", "--samples", "1"],
    "env_step.py": ["--sizes", "1k", "--repeats", "5"],
    "ppo_step.py": ["--smoke", "--repeats", "1", "--steps", "1", "--algorithms", "grpo", "ppo"],
    "qa_loading.py": ["--n", "100", "--repeats", "1"],
    "real_model.py": ["--phases", "vocab151k", "--vocab-batch", "2"],
    "retrieval.py": ["--sizes", "1k", "--backends", "bm25", "--queries", "20", "--http-size", ""],
    "retrieval_quality.py": ["--data", "{data}", "--backends", "bm25"],
    "retrieval_server.py": ["--size", "1k", "--servers", "stdlib"],
    "rollout.py": ["--smoke", "--episodes", "2", "--batch", "2", "--repeats", "1"],
    "rollout_scale.py": ["--data", "{data}/hotpotqa_dev_distractor.sample.json", "--batches", "4", "--latency", "0",
                         "--turns", "1", "--delays", "", "--processes", "1", "--repeats", "1"],
    "step_fuzz.py": ["--ids", "ToolMath-v0", "--formats", "hermes", "--examples", "5"],
    "suite_envs.py": ["--episodes", "3"],
    "synthetic_world.py": ["--n-people", "60"],
    "train_step.py": ["--smoke", "--steps", "1"],
    "view_scale.py": ["--episodes", "40", "--repeats", "1"],
    "warm_start_step.py": ["--smoke", "--steps", "1", "--batch", "2", "--threads", "1"],
}
# Scripts that need an optional extra: skipped, with the reason, where it is absent.
EXTRAS = {name: "trl" for name in ("copy_learning.py", "credit_step.py", "demo_failures.py", "ppo_step.py",
                                   "real_model.py", "rollout.py", "train_step.py", "warm_start_step.py")}
TABLE = re.compile(r"^\|.*\|\n\|(?: *:?-+:? *\|)+$", re.M)


def test_every_script_has_a_smoke_size():
    assert sorted(SMOKE) == SCRIPTS, "give each perf/ script its smallest arguments in SMOKE"


def test_no_script_shadows_a_module():
    # A script's directory comes first on sys.path: perf/datasets.py would hide the `datasets` package.
    shadowed = [s for s in SCRIPTS + [p.name for p in PERF.glob("_*.py")]
                if importlib.util.find_spec(Path(s).stem) is not None]
    assert not shadowed, f"perf scripts named like importable modules: {shadowed}; rename them"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_at_its_smallest_size(script, request, tmp_path):
    if script in EXTRAS:
        pytest.importorskip(EXTRAS[script])
    args = SMOKE[script]
    if any("{data}" in a for a in args):
        data = request.getfixturevalue("shared_data")
        args = [a.replace("{data}", str(data)) for a in args]
    if "{run}" in args:
        run = tmp_path / "run"
        shutil.copytree(request.getfixturevalue("tiny_dir"), run / "warm")
        args = [str(run) if a == "{run}" else a for a in args]
    # This checkout's toolgym, whatever is installed; a scratch directory for anything written.
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(PERF / script), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f"{script} {' '.join(args)} failed:\n{proc.stderr[-4000:]}"
    assert TABLE.search(proc.stdout), f"{script} printed no Markdown table:\n{proc.stdout[-2000:]}"
