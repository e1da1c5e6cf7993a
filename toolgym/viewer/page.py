"""``toolgym view``: one self-contained HTML page of episode records (no server, no network).

    from toolgym.viewer.page import write_page
    write_page("results/", "results/episodes.html")     # a bench output dir, an episodes.jsonl or a training run

The page's assets (``toolgym/viewer/assets/``: the HTML template, its script and style) are
package data, joined into the page with the records as one JSON blob. The blob is compact: each
episode's table row is a short list, and any long text that occurs twice or more (a system prompt,
a passage retrieved in many episodes) is stored once in a string table and referred to by number.
The page's script builds only the table rows in view and an episode's conversation when it is
opened, so large runs stay fast.

The viewer reads the files bench and training write (``episodes.jsonl``, TRL's
``trainer_state.json`` for the curves of a training run); neither of them imports it.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

EPISODES = "episodes.jsonl"
ASSETS = ("page.html", "viewer.css", "viewer.js")
# Row columns of the table, in the blob's order (the script reads the same list from the blob).
COLUMNS = ("env", "agent", "status", "success", "score", "em", "return", "turns", "tool_calls", "time", "step",
           "question", "key", "source")
INTERN_MIN = 24  # shorter strings are cheaper inline than as a reference
# TRL and toolgym log keys shown first as training curves (others follow, alphabetically).
CURVE_KEYS = ("reward", "answer/em", "answer/f1", "episode/turns", "tools/calls", "tools/parse_error_rate",
              "frac_reward_zero_std", "loss", "kl", "entropy")
MAX_CURVES = 12


def find_records(path: str | Path) -> tuple[Path, Path | None]:
    """The ``episodes.jsonl`` of ``path`` (the file itself, or the one in a bench or training
    output directory), and the directory of the run it belongs to."""
    path = Path(path)
    if path.is_file():
        return path, path.parent
    if path.is_dir():
        if (path / EPISODES).is_file():
            return path / EPISODES, path
        raise FileNotFoundError(f"{path} has no {EPISODES}: pass a `toolgym bench --out` directory, a training "
                                f"output_dir (grpo.output_dir, with log_episodes > 0) or an {EPISODES} file")
    raise FileNotFoundError(f"{path}: no such file or directory; pass a bench or training output directory or an "
                            f"{EPISODES} file")


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every complete line of ``path`` (a last line cut short by an interrupt is dropped)."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            if not line.endswith("\n"):
                break  # being written, or cut short by a kill
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: line {number} is not JSON ({err}); delete that line to view the rest") \
                    from err
    return records


def training_log(run: Path | None) -> list[dict[str, Any]]:
    """TRL's ``log_history`` of a training run: from its ``trainer_state.json`` (the run's own, or
    that of its latest ``checkpoint-N``); [] when there is none."""
    if run is None:
        return []
    candidates = [run / "trainer_state.json"]
    checkpoints = sorted(run.glob("checkpoint-*/trainer_state.json"),
                         key=lambda p: int(p.parent.name.rpartition("-")[2]) if p.parent.name.rpartition("-")[2]
                         .isdigit() else -1)
    candidates += checkpoints[::-1]
    for candidate in candidates:
        if candidate.is_file():
            return list(json.loads(candidate.read_text()).get("log_history", []))
    return []


def curves(log: Sequence[Mapping[str, Any]], records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Training curves: TRL's logged metrics by step, then the stored episodes' mean return and
    success by step (a sample of each step's episodes, as the curve's name says)."""
    series: dict[str, dict[int, float]] = {}
    for entry in log:
        step = entry.get("step")
        if not isinstance(step, int):
            continue
        for key, value in entry.items():
            if key not in ("step", "epoch") and isinstance(value, (int, float)) and not isinstance(value, bool):
                series.setdefault(key, {})[step] = float(value)
    ordered = [k for k in CURVE_KEYS if k in series] + sorted(k for k in series if k not in CURVE_KEYS)
    moving = [k for k in ordered if len(series[k]) >= 2 and len(set(series[k].values())) > 1]  # a flat line says little
    out = [{"name": k, "x": sorted(series[k]), "y": [series[k][s] for s in sorted(series[k])]}
           for k in moving][:MAX_CURVES]
    by_step: dict[int, list[Mapping[str, Any]]] = {}
    for r in records:
        if r.get("source") == "train" and r.get("mode", "train") == "train":
            by_step.setdefault(int(r.get("step", 0)), []).append(r)
    if len(by_step) >= 2:
        steps = sorted(by_step)
        for key, name in (("return", "stored episodes: mean return"), ("success", "stored episodes: success")):
            values = [[float(r[key]) for r in by_step[s] if isinstance(r.get(key), (int, float))] for s in steps]
            if all(values):
                out.append({"name": name, "x": steps, "y": [sum(v) / len(v) for v in values]})
    return out


def _question(first: Sequence[Mapping[str, Any]]) -> str:
    """The question as the table shows it: the last user message, without a leading label ("Question: ")."""
    users = [m.get("content", "") for m in first if m.get("role") in ("user", "text")]
    text = str(users[-1] if users else (first[-1].get("content", "") if first else ""))
    return re.sub(r"^(Question|Problem|Task): ", "", text)


def _row(r: Mapping[str, Any], question: str) -> list[Any]:
    result = r.get("result") or {}
    score = r.get("f1") if r.get("f1") is not None else result.get("score")
    key = r.get("id") if r.get("id") is not None else (r.get("index") if r.get("index") is not None else r.get("seed"))
    return [r.get("env"), r.get("agent"), r.get("status"), r.get("success"), score, r.get("em"), _round(r.get("return")),
            r.get("turns", len(r.get("steps") or [])), r.get("tool_calls"), _round(r.get("wall_time")), r.get("step"),
            question[:200], f"{r.get('env')}|{key}", r.get("source")]


def _round(x: Any) -> Any:
    return round(x, 4) if isinstance(x, float) else x


def _episode(r: Mapping[str, Any]) -> dict[str, Any]:
    """What the conversation view needs of a record (the table's columns are not repeated)."""
    keep = ("first", "prediction", "gold", "error", "truncated_by", "id", "index", "seed", "group",
            "mode", "tokens_in", "tokens_out", "evidence_recall", "subem")
    out = {k: r[k] for k in keep if k in r and r[k] is not None}
    out["steps"] = [_step(s) for s in r.get("steps") or ()]
    if r.get("result") is not None:  # its answer and gold are the record's prediction and gold
        out["result"] = {k: v for k, v in r["result"].items() if k not in ("answer", "gold")}
    return out


def _step(step: Mapping[str, Any]) -> dict[str, Any]:
    """A step with its numbers rounded for display (float noise such as 0.12000000000000001 costs bytes)."""
    out = dict(step)
    for key in ("reward", "seconds", "agent_seconds"):
        if isinstance(out.get(key), float):
            out[key] = round(out[key], 4)
    out["terms"] = {k: round(v, 4) if isinstance(v, float) else v for k, v in (step.get("terms") or {}).items()}
    return out


class _Strings:
    """Long strings seen more than once, stored once: ``ref(text)`` is the text or its index."""

    def __init__(self, counts: Counter):
        self.index: dict[str, int] = {}
        self.table: list[str] = []
        for text, n in counts.items():
            if n > 1:
                self.index[text] = len(self.table)
                self.table.append(text)

    def ref(self, text: Any) -> Any:
        return self.index.get(text, text) if isinstance(text, str) else text


def _texts(episode: Mapping[str, Any]) -> Iterable[str]:
    for m in episode.get("first", ()):
        yield m.get("content", "")
    for step in episode.get("steps", ()):
        yield step.get("action", "")
        for m in step.get("added", ()):
            yield m.get("content", "")


def _interned(episode: dict[str, Any], strings: _Strings) -> dict[str, Any]:
    def messages(ms):
        return [{**m, "content": strings.ref(m.get("content", ""))} for m in ms]

    out = dict(episode)
    out["first"] = messages(episode.get("first", ()))
    out["steps"] = [{**s, "action": strings.ref(s.get("action", "")), "added": messages(s.get("added", ()))}
                    for s in episode.get("steps", ())]
    return out


def page_data(records: Sequence[Mapping[str, Any]], *, title: str, log: Sequence[Mapping[str, Any]] = ()) -> dict:
    """The blob the page's script reads (see the module docstring)."""
    episodes = [_episode(r) for r in records]
    counts = Counter(t for ep in episodes for t in _texts(ep) if isinstance(t, str) and len(t) >= INTERN_MIN)
    strings = _Strings(counts)
    return {
        "title": title,
        "columns": list(COLUMNS),
        "rows": [_row(r, _question(r.get("first") or ())) for r in records],
        "episodes": [_interned(ep, strings) for ep in episodes],
        "strings": strings.table,
        "curves": curves(log, records),
    }


def _asset(name: str) -> str:
    return resources.files("toolgym.viewer").joinpath("assets", name).read_text(encoding="utf-8")


def render(data: Mapping[str, Any]) -> str:
    """The page: the template with its style, script and ``data`` inlined."""
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    blob = blob.replace("</", "<\\/").replace("<!--", "\\u003c!--")  # nothing in it may end the <script>
    page = _asset("page.html").replace("{{title}}", html.escape(str(data.get("title", "episodes"))))
    page = page.replace("{{style}}", _asset("viewer.css")).replace("{{script}}", _asset("viewer.js"))
    head, sep, tail = page.partition("{{data}}")
    if not sep:
        raise RuntimeError("toolgym/viewer/assets/page.html lost its {{data}} marker")
    return head + blob + tail


def write_page(path: str | Path, out: str | Path | None = None) -> tuple[Path, int]:
    """Write the page of the records at ``path`` (see :func:`find_records`) to ``out`` (default:
    ``episodes.html`` beside the records); returns the page's path and how many episodes it shows."""
    records_path, run = find_records(path)
    records = read_records(records_path)
    target = Path(out) if out is not None else records_path.with_suffix(".html")
    title = f"{run.name if run is not None else records_path.stem}: {len(records)} episodes"
    data = page_data(records, title=title, log=training_log(run))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(data), encoding="utf-8")
    return target, len(records)
