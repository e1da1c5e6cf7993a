"""Comparisons from one warm model: several RL algorithms (``toolgym demo --compare``), or the
credit arms over several seeds (``--compare credit``)."""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from toolgym.trainers.demo.config import CREDIT_ARMS, DemoConfig
from toolgym.trainers.demo.pipeline import printer, reinforce, warm_start
from toolgym.trainers.demo.plots import plot_credit, plot_curves
from toolgym.trainers.demo.reports import credit_markdown, credit_table


def compare_algorithms(cfg: DemoConfig, algorithms: list[str], progress: bool = True) -> dict[str, Any]:
    """One warm start, then each algorithm from a copy of the same warm model with the same seed;
    writes ``<output_dir>/<algorithm>/`` for each, ``curves.json`` and ``curves.png`` (held-out
    return and sampled EM against the RL step, one line per algorithm)."""
    ws = warm_start(cfg, progress)
    runs = {}
    for algorithm in algorithms:
        run_cfg = dataclasses.replace(cfg, algorithm=algorithm)
        runs[algorithm] = reinforce(run_cfg, ws, copy.deepcopy(ws.model), Path(cfg.output_dir) / algorithm, progress)
    curves = {a: {"curve": r["curve"], "rl_s": r["timings"]["rl_s"], "steps_to_em_0.8": r["steps_to_em_0.8"]}
              for a, r in runs.items()}
    out = Path(cfg.output_dir)
    (out / "curves.json").write_text(json.dumps({"config": asdict(cfg), "naive_rag": ws.naive_rag,
                                                 "algorithms": curves}, indent=2))
    plot_curves(curves, ws.naive_rag, out / "curves.png", title=f"toolgym demo: algorithms (credit={cfg.credit}, "
                                                                 f"seed={cfg.seed})")
    log = printer(progress)
    log(f"{'algorithm':<22} {'return':>7} {'sampled EM':>10} {'tool calls':>10} {'RL s':>6}")
    for a, r in runs.items():
        log(f"{a:<22} {r['after']['return']:>7.3f} {r['after']['em']:>10.2f} {r['after']['tool_calls']:>10.2f} "
            f"{r['timings']['rl_s']:>6.0f}")
    return runs


def compare_credit(cfg: DemoConfig, progress: bool = True) -> dict[str, Any]:
    """One warm model, then every arm of ``cfg.arms`` (outcome, step, gigpo credit with GRPO; PPO's
    GAE over turns) for ``cfg.seeds`` RL seeds, each from a copy of that model, into
    ``<output_dir>/<arm>-s<seed>/``. A run whose ``results.json`` exists is read, not re-run (so
    arms can run in separate processes from a saved ``warm_model`` and be gathered by a last call).
    Writes ``credit.json``, ``credit.md`` (the table) and ``credit.png`` (held-out sampled EM and
    return against the RL step and the RL wall time, mean over seeds, min-max shaded)."""
    out = Path(cfg.output_dir)
    arms = cfg.arms.split(",")
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    todo = [(a, s) for s in seeds for a in arms if not (out / f"{a}-s{s}" / "results.json").exists()]
    ws = warm_start(cfg, progress) if todo else None
    runs: dict[str, list[dict]] = {a: [] for a in arms}
    for s in seeds:
        for a in arms:
            path = out / f"{a}-s{s}"
            if (a, s) in todo:
                algorithm, credit = CREDIT_ARMS[a]
                run_cfg = dataclasses.replace(cfg, algorithm=algorithm, credit=credit, seed=s)
                runs[a].append(reinforce(run_cfg, ws, copy.deepcopy(ws.model), path, progress))
            else:
                runs[a].append(json.loads((path / "results.json").read_text()))
    table = credit_table(runs)
    naive = next(iter(runs.values()))[0]["naive_rag"]
    (out / "credit.json").write_text(json.dumps({"config": asdict(cfg), "naive_rag": naive, "table": table,
                                                 "curves": {a: [r["curve"] for r in rs] for a, rs in runs.items()},
                                                 "rl_s": {a: [r["timings"]["rl_s"] for r in rs] for a, rs in runs.items()}},
                                                indent=2))
    (out / "credit.md").write_text(credit_markdown(table))
    plot_credit(runs, naive, out / "credit.png", title=f"toolgym demo: credit ({cfg.template}, {len(seeds)} seeds)")
    printer(progress)(credit_markdown(table))
    return {"runs": runs, "table": table}
