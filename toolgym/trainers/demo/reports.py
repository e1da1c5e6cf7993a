"""The demo's numbers as text: the before/after summary, and the credit comparison's table with
Wilson intervals over the seeds' pooled episodes."""

from __future__ import annotations

import math
from typing import Any


def summary(r: dict) -> str:
    """The before/after table a demo run prints: naive RAG, the warm start and after RL."""
    after = f"after {r['config'].get('algorithm', 'grpo')}"
    rows = [("naive RAG", r["naive_rag"], None), ("warm start", r["before"], r["before_greedy"]),
            (after, r["after"], r["after_greedy"])]
    lines = [f"{'agent':<27} {'sampled EM':>10} {'greedy EM':>9} {'F1':>6} {'return':>7} {'tool calls':>10}"]
    for name, m, g in rows:
        greedy = f"{g['em']:.2f}" if g else "-"
        lines.append(f"{name:<27} {m['em']:>10.2f} {greedy:>9} {m['f1']:>6.2f} {m['return']:>7.2f} "
                     f"{m['tool_calls']:>10.2f}")
    t = r["timings"]
    lines.append("held-out teacher-forced copy accuracy after the warm start (film, director, birthplace): "
                 + ", ".join(f"{a:.2f}" for a in r.get("copy_accuracy", [])))
    lines.append(f"RL steps to held-out sampled EM >= 0.8: {r['steps_to_em_0.8']}; total {t['total_s']:.0f} s "
                 f"(warm start {t['warm_start_s']:.0f} s)")
    return "\n".join(lines)


def em_interval(em: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a rate ``em`` over ``n`` episodes."""
    if n <= 0:
        return 0.0, 1.0
    centre = (em + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(em * (1 - em) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def credit_table(runs: dict[str, list[dict]], target: float = 0.8) -> list[dict[str, Any]]:
    """Per arm: held-out sampled EM after RL (mean over seeds, each seed, and the 95% Wilson interval
    of all seeds' episodes pooled), return, EM curve (mean over seeds), RL steps to ``target`` EM
    (per seed) and RL seconds (mean)."""
    rows = []
    for arm, rs in runs.items():
        ems = [r["after"]["em"] for r in rs]
        n = sum(r["after"]["episodes"] for r in rs)
        pooled = sum(r["after"]["em"] * r["after"]["episodes"] for r in rs) / max(n, 1)
        steps = sorted({c["step"] for r in rs for c in r["curve"]})
        curve = [sum(next((c["em"] for c in r["curve"] if c["step"] == st), float("nan")) for r in rs) / len(rs)
                 for st in steps]
        rows.append({"arm": arm, "seeds": len(rs), "em": pooled, "em_per_seed": ems, "em_ci": em_interval(pooled, n),
                     "episodes": n, "return": sum(r["after"]["return"] for r in rs) / len(rs),
                     "greedy_em": sum(r["after_greedy"]["em"] for r in rs) / len(rs),
                     "steps": steps, "em_curve": curve,
                     "steps_to_target": [next((c["step"] for c in r["curve"] if c["em"] >= target), None) for r in rs],
                     "rl_s": sum(r["timings"]["rl_s"] for r in rs) / len(rs)})
    return rows


def credit_markdown(table: list[dict[str, Any]]) -> str:
    """``credit_table`` as the Markdown table of ``credit.md``."""
    steps = table[0]["steps"] if table else []
    head = ("| arm | seeds | sampled EM after (95% CI, pooled) | per seed | greedy EM | return | EM at steps "
            f"{', '.join(map(str, steps))} (mean) | steps to 0.8 | RL s / run |")
    lines = [head, "|" + "---|" * 9]
    for r in table:
        lo, hi = r["em_ci"]
        lines.append(f"| {r['arm']} | {r['seeds']} | {r['em']:.2f} ({lo:.2f}-{hi:.2f}) | "
                     f"{', '.join(f'{e:.2f}' for e in r['em_per_seed'])} | {r['greedy_em']:.2f} | {r['return']:.2f} | "
                     f"{', '.join(f'{e:.2f}' for e in r['em_curve'])} | "
                     f"{', '.join('-' if s is None else str(s) for s in r['steps_to_target'])} | {r['rl_s']:.0f} |")
    return "\n".join(lines) + "\n"
