"""Benchmark metrics: per-episode records summarised per (agent, env), with bootstrap intervals.

Answer scores (EM, F1, substring-EM) are computed by the env with
``toolgym.envs.multihop_qa.metrics`` (official SQuAD/HotpotQA normalisation, aliases honoured) and
read from the ``qa`` extras of its episode result (``toolgym.envs.result``); nothing here re-scores
answers. Every env's result has ``success``, so envs without answer metrics are summarised by it
and the episode return, and any toolgym id works unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from toolgym.envs.multihop_qa.metrics import normalize_answer

#: Metrics summarised when episodes carry them, in table order.
SCORE_KEYS = ("em", "f1", "subem", "success", "return", "evidence_recall")
COST_KEYS = ("tool_calls", "turns", "tokens_in", "tokens_out", "wall_time", "seconds")
#: The headline metric of a (agent, env) cell: the first of these the episodes carry.
PRIMARY_ORDER = ("em", "success", "return")


def bootstrap_ci(values: Sequence[float], *, n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (seeded, so a report is reproducible).

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_resamples, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def paired_bootstrap_ci(a: Sequence[float], b: Sequence[float], *, n_resamples: int = 1000, seed: int = 0,
                        level: float = 0.95) -> tuple[float, float]:
    """Interval of ``mean(b) - mean(a)`` over the same items (resampled together)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same length, got {a.size} and {b.size}")
    return bootstrap_ci(b - a, n_resamples=n_resamples, seed=seed, level=level)


def unpaired_bootstrap_ci(a: Sequence[float], b: Sequence[float], *, n_resamples: int = 1000, seed: int = 0,
                          level: float = 0.95) -> tuple[float, float]:
    """Interval of ``mean(b) - mean(a)`` for independent samples (each resampled on its own)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    diff = (b[rng.integers(0, b.size, (n_resamples, b.size))].mean(1)
            - a[rng.integers(0, a.size, (n_resamples, a.size))].mean(1))
    alpha = (1.0 - level) / 2
    low, high = np.quantile(diff, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def evidence_recall(found: Sequence[str] | None, gold_titles: Sequence[str] | None) -> float | None:
    """Share of the gold supporting passages the agent retrieved (None when there is no gold evidence).

    ``found`` is the env's ``info["found_supporting"]`` (gold titles retrieved so far); titles are
    compared after the env's own answer normalisation, as the env does when it fills ``found``.
    The runner prefers the env's own ``info["evidence_recall"]`` (MultiHopQA counts MuSiQue by
    paragraph, so one of two gold paragraphs of a page is half); this count by title is the
    fallback for envs that report only the titles found.
    """
    return recall_of(found, normalized_titles(gold_titles))


def normalized_titles(titles: Iterable[str] | None) -> frozenset[str]:
    return frozenset(normalize_answer(t) for t in titles or ())


def recall_of(found: Sequence[str] | None, gold: frozenset[str]) -> float | None:
    """``evidence_recall`` with the gold titles normalised once (``normalized_titles``)."""
    if not gold:
        return None
    return len(normalized_titles(found) & gold) / len(gold)


def metric_values(records: Sequence[Mapping[str, Any]], key: str) -> list[float] | None:
    """The per-episode values of ``key``; episodes that ended without it (timeouts, errors) count 0.
    None when no episode carries the metric (the env does not have it)."""
    if not any(r.get(key) is not None for r in records):
        return None
    return [float(r.get(key) or 0.0) for r in records]


def primary_metric(records: Sequence[Mapping[str, Any]]) -> str:
    for key in PRIMARY_ORDER:
        if any(r.get(key) is not None for r in records):
            return key
    return "return"


def present_metrics(records: Sequence[Mapping[str, Any]]) -> set[str]:
    """The score metrics that at least one of ``records`` carries."""
    return {k for k in SCORE_KEYS if any(r.get(k) is not None for r in records)}


def summarize(records: Sequence[Mapping[str, Any]], *, seed: int = 0, n_resamples: int = 1000,
              metrics: set[str] | None = None) -> dict[str, Any]:
    """One (agent, env) cell: means of every metric present, 95% intervals of the score metrics,
    episode counts by how they ended, and the per-turn breakdown.

    ``metrics``: the score metrics the env has (e.g. found in any agent's records of it), so an
    agent whose episodes all timed out still scores 0 on them rather than having no entry.
    """
    metrics = present_metrics(records) | (metrics or set())
    primary = next((k for k in PRIMARY_ORDER if k in metrics), "return")
    out: dict[str, Any] = {"n": len(records), "primary": primary, "metrics": {}}
    for key in SCORE_KEYS:
        if key not in metrics:
            continue
        values = [float(r.get(key) or 0.0) for r in records]
        if key == "evidence_recall":  # only episodes that have gold evidence
            values = [float(r[key]) for r in records if r.get(key) is not None] or [0.0]
        low, high = bootstrap_ci(values, seed=seed, n_resamples=n_resamples)
        out["metrics"][key] = {"mean": float(np.mean(values)), "ci95": [low, high]}
    for key in COST_KEYS:
        values = metric_values(records, key)
        if values is not None:
            out["metrics"][key] = {"mean": float(np.mean(values))}
    statuses: dict[str, int] = {}
    for r in records:
        statuses[r.get("status", "unknown")] = statuses.get(r.get("status", "unknown"), 0) + 1
    out["status"] = statuses
    out["per_turn"] = per_turn(records)
    return out


def per_turn(records: Sequence[Mapping[str, Any]]) -> list[dict[str, float]]:
    """For each turn t: the share of episodes ended by t, the mean evidence recall after t (an
    ended episode keeps its final value), and the mean headline score of episodes that ended at t."""
    if not records:
        return []
    primary = primary_metric(records)
    horizon = max(int(r.get("turns") or 0) for r in records)
    rows = []
    for t in range(1, horizon + 1):
        ended = [r for r in records if int(r.get("turns") or 0) <= t]
        at_t = [float(r.get(primary) or 0.0) for r in records if int(r.get("turns") or 0) == t]
        recalls = []
        for r in records:
            curve = r.get("turn_recall") or []
            if curve:
                recalls.append(float(curve[min(t, len(curve)) - 1]))
        rows.append({
            "turn": t,
            "ended": len(ended) / len(records),
            "episodes_ending": len(at_t),
            "score_of_ending": float(np.mean(at_t)) if at_t else None,
            "evidence_recall": float(np.mean(recalls)) if recalls else None,
        })
    return rows


def group(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Records by (agent, env), each list sorted by episode index."""
    cells: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in records:
        cells.setdefault((r["agent"], r["env"]), []).append(r)
    for rows in cells.values():
        rows.sort(key=lambda r: r["index"])
    return cells
