"""Reports of a results directory: ``results.json``, ``results.md`` (tables laid out like the
Agent-R1 paper: rows agents, columns datasets and their average), PNG plots, official prediction
files, and ``compare`` between two directories."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolgym.benchmarks.metrics import (
    group,
    metric_values,
    paired_bootstrap_ci,
    present_metrics,
    summarize,
    unpaired_bootstrap_ci,
)
from toolgym.benchmarks.official import OFFICIAL, write_official
from toolgym.benchmarks.plots import available, plot_results
from toolgym.benchmarks.store import EpisodeStore
from toolgym.benchmarks.suites import AGENT_R1, SEARCH_R1_GENERAL, SEARCH_R1_MULTIHOP, short_name
from toolgym.envs.errors import unknown_name_error


def build_results(records: Sequence[Mapping[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """The summary of every (agent, env) cell in ``records`` plus each agent's average over envs."""
    agents = list(dict.fromkeys(r["agent"] for r in records))
    envs = list(dict.fromkeys(r["env"] for r in records))
    cells: dict[str, dict[str, Any]] = {a: {} for a in agents}
    env_metrics = {env: present_metrics([r for r in records if r["env"] == env]) for env in envs}
    for (agent, env), rows in group(records).items():
        cells[agent][env] = summarize(rows, seed=seed, metrics=env_metrics[env])
    average: dict[str, dict[str, float]] = {}
    for agent in agents:
        if all(env in cells[agent] for env in envs):
            keys = set.intersection(*(set(cells[agent][env]["metrics"]) for env in envs))
            average[agent] = {k: float(np.mean([cells[agent][env]["metrics"][k]["mean"] for env in envs]))
                              for k in sorted(keys)}
    return {"agents": agents, "envs": envs, "cells": cells, "average": average}


def _difference(ra, rb, metric: str):
    """(A's values, B's values, paired) of one env's records: over the indices both ran when they
    share some (paired), else all of each; None when either lacks the metric."""
    if metric_values(ra, metric) is None or metric_values(rb, metric) is None:
        return None
    a_by, b_by = {r["index"]: r for r in ra}, {r["index"]: r for r in rb}
    shared = [i for i in a_by if i in b_by]
    if shared:
        return ([float(a_by[i].get(metric) or 0.0) for i in shared],
                [float(b_by[i].get(metric) or 0.0) for i in shared], True)
    return metric_values(ra, metric), metric_values(rb, metric), False


def load_records(out: str | Path) -> list[dict[str, Any]]:
    path = Path(out) / "episodes.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: is {out} a results directory written by `toolgym bench`?")
    return EpisodeStore(path).load()


def write_reports(out: str | Path, *, seed: int = 0, plots: bool = True) -> dict[str, Any]:
    """(Re)write every report of ``out`` from its ``episodes.jsonl``; return the results dict."""
    out = Path(out)
    records = load_records(out)
    results = build_results(records, seed=seed)
    (out / "results.json").write_text(json.dumps(_finite(results), indent=2, allow_nan=False))
    plots = plots and available()  # without matplotlib everything but the plots is written
    (out / "results.md").write_text(markdown(results, plots=plots))
    write_predictions(records, out / "predictions")
    if plots and records:
        plot_results(results, out / "plots")
    return results


def _finite(value):
    """NaN/inf become null: results.json stays strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# -- Markdown ------------------------------------------------------------------------------------------
def _fmt(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _mean_of(results: Mapping[str, Any], agent: str, envs: Sequence[str], metric: str) -> float | None:
    """The agent's mean of ``metric`` over ``envs``; None unless it has the metric on every one."""
    values = [results["cells"][agent].get(env, {}).get("metrics", {}).get(metric) for env in envs]
    return float(np.mean([v["mean"] for v in values])) if envs and all(values) else None


def main_table(results: Mapping[str, Any], metric: str, envs: Sequence[str] | None = None) -> str:
    """Rows agents, columns envs and Avg: the Agent-R1 paper's layout (``envs``: a subset, in order)."""
    subset = envs is not None
    envs = [e for e in envs if e in results["envs"]] if subset else results["envs"]
    head = "| Method | " + " | ".join(short_name(e) for e in envs) + " | Avg |"
    lines = [head, "|---" * (len(envs) + 2) + "|"]
    for agent in results["agents"]:
        row = [agent]
        for env in envs:
            m = results["cells"][agent].get(env, {}).get("metrics", {}).get(metric)
            row.append(_fmt(m["mean"]) if m else "–")
        avg = _mean_of(results, agent, envs, metric) if subset else results["average"].get(agent, {}).get(metric)
        row.append(_fmt(avg))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def search_r1_table(results: Mapping[str, Any], metric: str = "em") -> str:
    """Search-R1's layout: rows agents; columns NQ, TriviaQA, PopQA (general QA), HotpotQA, 2wiki,
    Musique, Bamboogle (multi-hop QA), the two group averages and the average of all seven. A set
    not run shows "–", and so does an average missing one of its sets."""
    columns = SEARCH_R1_GENERAL + SEARCH_R1_MULTIHOP
    general, multihop = [e for e, _ in SEARCH_R1_GENERAL], [e for e, _ in SEARCH_R1_MULTIHOP]
    lines = ["| Method | " + " | ".join(title for _, title in columns) + " | General QA avg | Multi-hop avg | Avg |",
             "|---" * (len(columns) + 4) + "|"]
    for agent in results["agents"]:
        row = [agent]
        for env, _ in columns:
            m = results["cells"][agent].get(env, {}).get("metrics", {}).get(metric)
            row.append(_fmt(m["mean"]) if m else "–")
        row += [_fmt(_mean_of(results, agent, group, metric)) for group in (general, multihop, general + multihop)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _is_search_r1(results: Mapping[str, Any]) -> bool:
    return any(env in results["envs"] for env, _ in SEARCH_R1_GENERAL + (("Bamboogle-v0", ""),))


def markdown(results: Mapping[str, Any], plots: bool = True) -> str:
    """``results.md``; ``plots``: whether ``plots/`` was drawn (it is pointed to only then)."""
    cells = [c for per_env in results["cells"].values() for c in per_env.values()]
    present = [k for k in ("em", "f1", "subem", "success", "return") if any(k in c["metrics"] for c in cells)]
    names = {"em": "Exact match (EM)", "f1": "F1", "subem": "Substring EM", "success": "Success rate",
             "return": "Episode return"}
    parts = ["# Benchmark results", ""]
    if _is_search_r1(results):  # the open-domain suite: Search-R1's table, then Agent-R1's for the multi-hop three
        multihop = [e for e in AGENT_R1 if e in results["envs"]]
        parts += ["## Exact match (EM), Search-R1 layout", "", search_r1_table(results, "em"), ""]
        for metric in [m for m in present[:3] if multihop]:
            parts += [f"## {names[metric]}, Agent-R1 layout", "", main_table(results, metric, multihop), ""]
    else:
        for metric in present[:3]:
            parts += [f"## {names[metric]}", "", main_table(results, metric), ""]
    parts += ["## Details (means; 95% bootstrap intervals in brackets)", "",
              "| Method | Env | n | EM | F1 | SubEM | Success | Return | Evidence recall | Tool calls | Turns | "
              "Tokens in | Tokens out | Wall s | Ended |",
              "|---" * 15 + "|"]
    for agent in results["agents"]:
        for env in results["envs"]:
            cell = results["cells"][agent].get(env)
            if cell is None:
                continue
            m = cell["metrics"]

            def with_ci(key, m=m):
                if key not in m:
                    return "n/a" if key == "evidence_recall" else "–"
                low, high = m[key].get("ci95", (None, None))
                return f"{_fmt(m[key]['mean'])} [{_fmt(low)}, {_fmt(high)}]" if low is not None else _fmt(m[key]["mean"])

            def mean(key, digits=2, m=m):
                return _fmt(m[key]["mean"], digits) if key in m else "–"

            ended = ", ".join(f"{k} {v}" for k, v in sorted(cell["status"].items()))
            parts.append(
                f"| {agent} | {short_name(env)} | {cell['n']} | {with_ci('em')} | {with_ci('f1')} | {with_ci('subem')} | "
                f"{with_ci('success')} | {with_ci('return')} | {with_ci('evidence_recall')} | {mean('tool_calls')} | "
                f"{mean('turns')} | {mean('tokens_in', 0)} | {mean('tokens_out', 0)} | {mean('wall_time', 3)} | {ended} |"
            )
    if any("evidence_recall" not in c["metrics"] and "em" in c["metrics"] for c in cells):
        parts += ["", "Evidence recall n/a: those questions carry no gold evidence (open-domain sets)."]
    parts += ["", "Plots: `plots/`. Per-turn breakdown: `results.json` (`per_turn`) and `plots/per_turn.png`." if plots
              else "Per-turn breakdown: `results.json` (`per_turn`). No plots: matplotlib was not installed "
                   "(pip install 'toolgym[bench]', then `toolgym bench report DIR`).", ""]
    return "\n".join(parts)


# -- official prediction files ----------------------------------------------------------------------------
def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "agent"


def write_predictions(records: Sequence[Mapping[str, Any]], root: str | Path) -> list[Path]:
    """Prediction files in each dataset's official format, one per (agent, env), with the gold file
    cut to the same questions beside them (see ``toolgym.benchmarks.official``).

    HotpotQA: ``{"answer", "sp"}``; 2Wiki: ``{"answer", "sp", "evidence"}``; MuSiQue: JSON lines
    ``{id, predicted_answer, predicted_support_idxs, predicted_answerable}``; supporting facts are
    the paragraphs the agent retrieved. Other envs: JSON lines ``{index, id, prediction}``. An
    episode that ended without an answer predicts "".
    """
    written = []
    for (agent, env), rows in group(records).items():
        folder = Path(root) / slug(agent)
        folder.mkdir(parents=True, exist_ok=True)
        dataset = rows[0].get("dataset")
        if dataset in OFFICIAL:
            written += write_official(dataset, rows, folder / f"{slug(env)}{OFFICIAL[dataset]}")
            continue
        path = folder / f"{slug(env)}.jsonl"
        path.write_text("".join(json.dumps({"index": r["index"], "id": r.get("id"),
                                            "prediction": r.get("prediction")}, ensure_ascii=False) + "\n"
                                for r in rows))
        written.append(path)
    return written


# -- compare ----------------------------------------------------------------------------------------------
def results_ref(text: str | Path) -> tuple[Path, str | None]:
    """``"DIR"`` -> (DIR, None); ``"DIR:LABEL"`` -> (DIR, LABEL): one agent of a results directory
    (labels may hold colons, so the directory is the longest prefix before a colon that exists)."""
    text = str(text)
    if Path(text).is_dir() or ":" not in text:
        return Path(text), None
    for cut in [i for i, ch in enumerate(text) if ch == ":"][::-1]:
        if Path(text[:cut]).is_dir():
            return Path(text[:cut]), text[cut + 1:] or None
    return Path(text), None


def compare(dir_a: str | Path, dir_b: str | Path, *, metrics: Sequence[str] = ("em", "f1", "success"),
            seed: int = 0) -> str:
    """A table of ``B - A`` per env and metric with 95% bootstrap intervals: paired over the
    episodes both ran (same env and index), unpaired when they share none; with several envs, a
    row "all" pools their episodes. Agents are matched by label when the directories share labels,
    else every agent of A is compared with every one of B; ``DIR:LABEL`` picks one agent of a
    directory (two rows of one results directory: ``compare DIR:A DIR:B``)."""
    (path_a, pick_a), (path_b, pick_b) = results_ref(dir_a), results_ref(dir_b)
    recs_a, recs_b = load_records(path_a), load_records(path_b)
    for pick, recs, path in ((pick_a, recs_a, path_a), (pick_b, recs_b, path_b)):
        if pick is not None and not any(r["agent"] == pick for r in recs):
            raise ValueError(f"{path}: {unknown_name_error('agent label', pick, {r['agent'] for r in recs})}")
    cells_a, cells_b = group(recs_a), group(recs_b)
    labels_a = [pick_a] if pick_a else list(dict.fromkeys(r["agent"] for r in recs_a))
    labels_b = [pick_b] if pick_b else list(dict.fromkeys(r["agent"] for r in recs_b))
    common = [label for label in labels_a if label in labels_b]
    pairs = [(label, label) for label in common] if common and not (pick_a or pick_b) else \
        [(a, b) for a in labels_a for b in labels_b]
    lines = [f"A = {dir_a}", f"B = {dir_b}", "",
             "| A agent | B agent | Env | Metric | n | A | B | B - A | 95% CI | paired |", "|---" * 10 + "|"]
    for a, b in pairs:
        envs = [e for e in dict.fromkeys(r["env"] for r in recs_a) if (a, e) in cells_a and (b, e) in cells_b]
        for metric in metrics:
            pooled = [_difference(cells_a[(a, env)], cells_b[(b, env)], metric) for env in envs]
            rows = [(short_name(env), d) for env, d in zip(envs, pooled, strict=True) if d is not None]
            if len(rows) > 1:  # every env's episodes together
                rows.append(("all", ([x for _, d in rows for x in d[0]], [x for _, d in rows for x in d[1]],
                                     all(d[2] for _, d in rows))))
            for env_name, (xa, xb, paired) in rows:
                low, high = (paired_bootstrap_ci if paired else unpaired_bootstrap_ci)(xa, xb, seed=seed)
                n = len(xa) if paired else min(len(xa), len(xb))
                ma, mb = float(np.mean(xa)), float(np.mean(xb))
                flag = " *" if low > 0 or high < 0 else ""
                lines.append(f"| {a} | {b} | {env_name} | {metric} | {n} | {_fmt(ma)} | {_fmt(mb)} | "
                             f"{mb - ma:+.3f}{flag} | [{low:+.3f}, {high:+.3f}] | {'yes' if paired else 'no'} |")
    if len(lines) == 5:
        lines.append("(nothing to compare: no env and metric in common)")
    lines += ["", "* the 95% interval excludes 0."]
    return "\n".join(lines)
