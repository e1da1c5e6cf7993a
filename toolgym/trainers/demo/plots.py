"""The demo's PNG plots: one run (``demo.png``), the algorithms from one warm start
(``curves.png``) and the credit arms over seeds (``credit.png``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def _row_of_panels(path: Path, panels: int, size: tuple[float, float], title: str) -> Iterator:
    """Axes for ``panels`` plots side by side; on exit the figure gets ``title`` and is written to
    ``path`` (PNG, 100 dpi) and closed, also when drawing failed."""
    import matplotlib  # with the train or bench extra

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, panels, figsize=size)
    try:
        yield axes
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def plot(r: dict, path: Path) -> None:
    """One run: return, sampled EM and tool calls of naive RAG, the warm start and after RL, and
    the held-out sampled EM per RL step."""
    title = (f"toolgym demo ({r['config'].get('algorithm', 'grpo')}, credit={r['config']['credit']}, "
             f"seed={r['config']['seed']})")
    with _row_of_panels(path, 4, (16, 3.6), title) as axes:
        names = ["naive RAG", "warm start", "after GRPO"]
        for ax, key, label in zip(axes[:3], ["return", "em", "tool_calls"], ["episode return", "EM (sampled)",
                                                                            "tool calls / episode"], strict=True):
            vals = [r["naive_rag"][key], r["before"][key], r["after"][key]]
            ax.bar(names, vals, color=["#999999", "#6a9fd4", "#2a6f2a"])
            ax.set_title(label)
            for k, v in enumerate(vals):
                ax.text(k, v, f"{v:.2f}", ha="center", va="bottom")
        steps = [c["step"] for c in r["curve"]]
        axes[3].plot(steps, [c["em"] for c in r["curve"]], marker="o")
        axes[3].axhline(0.8, ls="--", color="gray")
        axes[3].set_xlabel("GRPO step")
        axes[3].set_title("held-out sampled EM")
        axes[3].set_ylim(0, 1)


def plot_curves(curves: dict[str, dict], naive: dict[str, float], path: Path, title: str) -> None:
    """Held-out return, sampled EM and tool calls against the RL step, one line per algorithm."""
    panels = [("return", "held-out episode return"), ("em", "held-out sampled EM"), ("tool_calls", "tool calls / episode")]
    with _row_of_panels(path, len(panels), (15, 3.8), title) as axes:
        for ax, (key, label) in zip(axes, panels, strict=True):
            for algorithm, c in curves.items():
                ax.plot([p["step"] for p in c["curve"]], [p[key] for p in c["curve"]], marker="o", ms=3,
                        label=algorithm)
            ax.axhline(naive[key], ls=":", color="gray", label="naive RAG")
            ax.set_xlabel("RL step")
            ax.set_title(label)
        axes[1].axhline(0.8, ls="--", color="gray", lw=0.8)
        axes[1].set_ylim(-0.02, 1)
        axes[0].legend(fontsize=8)


def plot_credit(runs: dict[str, list[dict]], naive: dict[str, float], path: Path, title: str) -> None:
    """Held-out sampled EM against the RL step and against RL wall time, and return against the RL
    step: one line per arm (mean over seeds), the seeds' min-max shaded."""
    with _row_of_panels(path, 3, (15, 3.8), title) as axes:
        for arm, rs in runs.items():
            steps = sorted({c["step"] for r in rs for c in r["curve"]})
            for ax, key, clock in ((axes[0], "em", False), (axes[1], "em", True), (axes[2], "return", False)):
                vals = np.array([[next((c[key] for c in r["curve"] if c["step"] == st), np.nan) for st in steps]
                                 for r in rs])
                x = np.array(steps, dtype=float)
                if clock:  # RL seconds, at a constant pace per step (the held-out evaluations left out)
                    x = x * np.mean([r["timings"]["rl_s"] for r in rs]) / max(steps[-1], 1)
                line, = ax.plot(x, np.nanmean(vals, 0), marker="o", ms=3, label=arm)
                ax.fill_between(x, np.nanmin(vals, 0), np.nanmax(vals, 0), color=line.get_color(), alpha=0.15)
        for ax, key, label, xlabel in ((axes[0], "em", "held-out sampled EM", "RL step"),
                                       (axes[1], "em", "held-out sampled EM", "RL wall time (s)"),
                                       (axes[2], "return", "held-out episode return", "RL step")):
            ax.axhline(naive[key], ls=":", color="gray", label="naive RAG")
            ax.set_title(label)
            ax.set_xlabel(xlabel)
        axes[0].set_ylim(-0.02, 1)
        axes[1].set_ylim(-0.02, 1)
        axes[0].legend(fontsize=8)
