"""PNG plots of a results dict: one grouped bar chart per score metric, and the per-turn breakdown."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolgym.benchmarks.suites import short_name

TITLES = {"em": "Exact match", "f1": "F1", "subem": "Substring EM", "success": "Success rate",
          "return": "Episode return", "evidence_recall": "Evidence recall"}


def available() -> bool:
    """Whether matplotlib (the ``bench`` extra) is installed, so plots can be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(f"plots need matplotlib ({err}). Install it with: pip install 'toolgym[bench]'") from err
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_results(results: Mapping[str, Any], folder: str | Path) -> list[Path]:
    """``<metric>.png`` (rows agents as bars, datasets and Avg as groups, 95% intervals as error bars)
    for each score metric present, and ``per_turn.png``. Returns the files written."""
    plt = _pyplot()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    agents, envs, cells = results["agents"], results["envs"], results["cells"]
    written = []
    for metric, title in TITLES.items():
        if not any(metric in c["metrics"] for per_env in cells.values() for c in per_env.values()):
            continue
        groups = [short_name(e) for e in envs] + (["Avg"] if results["average"] else [])
        width = 0.8 / max(len(agents), 1)
        fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(groups) * max(1, len(agents)) ** 0.5 + 2), 3.6))
        for k, agent in enumerate(agents):
            xs, ys, lo, hi = [], [], [], []
            for g, env in enumerate(envs):
                m = cells[agent].get(env, {}).get("metrics", {}).get(metric)
                if m is None:
                    continue
                low, high = m.get("ci95", (m["mean"], m["mean"]))
                xs.append(g + k * width)
                ys.append(m["mean"])
                lo.append(max(0.0, m["mean"] - (low if low is not None else m["mean"])))
                hi.append(max(0.0, (high if high is not None else m["mean"]) - m["mean"]))
            avg = results["average"].get(agent, {}).get(metric)
            if avg is not None:
                xs.append(len(envs) + k * width)
                ys.append(avg)
                lo.append(0.0)
                hi.append(0.0)
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, label=agent)
        ax.set_xticks([g + width * (len(agents) - 1) / 2 for g in range(len(groups))], groups)
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.legend(fontsize="small", loc="best")
        fig.tight_layout()
        path = folder / f"{metric}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    written.append(plot_per_turn(results, folder / "per_turn.png"))
    return written


def plot_per_turn(results: Mapping[str, Any], path: str | Path) -> Path:
    """Per env: the share of episodes ended by each turn (solid) and the mean evidence recall
    after each turn (dashed), one colour per agent."""
    plt = _pyplot()
    envs = results["envs"]
    fig, axes = plt.subplots(1, len(envs), figsize=(4.0 * len(envs), 3.4), squeeze=False)
    for ax, env in zip(axes[0], envs):
        for k, agent in enumerate(results["agents"]):
            rows = results["cells"][agent].get(env, {}).get("per_turn") or []
            if not rows:
                continue
            turns = [r["turn"] for r in rows]
            color = f"C{k % 10}"
            ax.plot(turns, [r["ended"] for r in rows], color=color, marker="o", label=f"{agent} ended")
            recall = [r["evidence_recall"] for r in rows]
            if any(v is not None for v in recall):
                ax.plot(turns, [v if v is not None else float("nan") for v in recall], color=color,
                        linestyle="--", label=f"{agent} evidence recall")
        ax.set_title(short_name(env))
        ax.set_xlabel("turn")
        ax.set_ylim(-0.02, 1.02)
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(fontsize="x-small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
