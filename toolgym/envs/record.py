"""The episode record: one episode stored whole, as bench, training and ``toolgym episodes`` write it.

One JSON object per line of an ``episodes.jsonl``, documented by the JSON Schema
``toolgym/envs/episode_record.schema.json`` (:func:`schema`). Compact by construction: the first
observation (system prompt and question) is stored once, then each step holds only what it added:

    {"record": 1, "source": "bench", "env": "MultiHopQA-v0", "agent": "oracle", "status": "terminated",
     "result": {"success": true, "score": 1.0, "answer": "...", "gold": "...", "extras": {...}},
     "first": [{"role": "system", "content": "..."}, {"role": "user", "content": "..."}],
     "steps": [{"action": "<tool_call>...</tool_call>", "calls": [{"name": "search", "arguments": {...}}],
                "added": [{"role": "user", "content": "<tool_response>..."}], "reward": 0.1,
                "terms": {"valid_call": 0.1}, "tokens_in": 0, "tokens_out": 0, "seconds": 0.002}],
     ...}

A step's ``added`` are the messages the env appended after the step's own assistant message (whose
text is ``action``, as the agent wrote it). A step whose context was not merely extended (a sliding
window elided an old tool result) has ``"context": "replaced"`` and ``added`` is the whole new
context. ``parse_error``/``tool_error`` appear only when set; ``stepped: false`` marks an action
the env never received (the time limit passed, the agent failed). Training records add ``step``
(the optimiser step), ``mode`` and, per step, ``train``: the step's advantage and which of its
tokens were trained (see the schema). Bench records keep every key they had before (the reports
read them) beside these.

:class:`EpisodeLog` builds ``first`` and ``steps`` while an episode runs; it has no dependency
beyond the standard library, so every consumer of the envs can write records.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from toolgym.envs.result import EpisodeResult

#: Version of the record layout (the ``record`` key); bumped when a key changes meaning.
RECORD_VERSION = 1
SCHEMA_FILE = "episode_record.schema.json"
SOURCES = ("bench", "train", "episodes")


def schema() -> dict[str, Any]:
    """The JSON Schema of one record (package data beside this module)."""
    return json.loads(resources.files("toolgym.envs").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def read_action(env, text: str) -> tuple[str, list[dict[str, Any]]]:
    """``text`` as the env's own format reads it: (content, [{"name": ..., "arguments": ...}, ...]).

    Formats that turn text into a chat message (``parse_message``, the model family's own syntax)
    give their content and calls; the others give the text itself and the calls they parse.
    """
    base = env.unwrapped
    fmt, tools = getattr(base, "format", None), getattr(base, "tools", ())
    if fmt is None:
        return text, []
    if hasattr(fmt, "parse_message"):
        message = fmt.parse_message(text, tools)
        calls = [{"name": c["function"]["name"], "arguments": c["function"].get("arguments", {})}
                 for c in message.get("tool_calls") or []]
        return message.get("content") or "", calls
    return text, [{"name": c.name, "arguments": c.arguments} for c in fmt.parse(text, tools).calls]


def messages_of(observation: Any) -> list[dict[str, Any]]:
    """An observation as a list of fresh message dicts (a text observation is one ``text`` message)."""
    if isinstance(observation, str):
        return [{"role": "text", "content": observation}]
    return [dict(m) for m in observation]


def added_messages(before: Any, after: Any) -> tuple[list[dict[str, Any]], bool]:
    """What the step from observation ``before`` to ``after`` added, after its own assistant message,
    and whether the context was replaced instead (then the first value is all of ``after``)."""
    if isinstance(before, str) and isinstance(after, str):
        if after.startswith(before):
            return [{"role": "text", "content": after[len(before):]}], False
        return messages_of(after), True
    old, new = messages_of(before), messages_of(after)
    if len(new) < len(old) or new[:len(old)] != old:
        return new, True
    added = new[len(old):]
    if added and added[0].get("role") == "assistant":
        added = added[1:]  # the action itself, stored once as the step's "action"
    return added, False


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class EpisodeLog:
    """``first`` and ``steps`` of one running episode (see the module docstring).

    ``clock`` is what ``seconds`` is measured with: a step's ``seconds`` is the time since the
    previous step ended (the episode's start for the first), the agent's time included.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.first: list[dict[str, Any]] | None = None
        self.steps: list[dict[str, Any]] = []
        self._clock = clock
        self._last = clock()

    def step(self, env, before: Any, text: str, after: Any, reward: float, info: Mapping[str, Any], *,
             tokens_in: int = 0, tokens_out: int = 0, agent_seconds: float | None = None) -> dict[str, Any]:
        """Log one env step: the observation it was taken on (``before``), the action ``text``, the
        step's outputs. Returns the step entry (appended to :attr:`steps`)."""
        if self.first is None:
            self.first = messages_of(before)
        added, replaced = added_messages(before, after)
        entry: dict[str, Any] = {"action": text, "calls": _json_safe(read_action(env, text)[1]), "added": added,
                                 "reward": float(reward), "terms": _json_safe(dict(info.get("reward_terms", {})))}
        if replaced:
            entry["context"] = "replaced"
        for key in ("parse_error", "tool_error"):
            if info.get(key):
                entry[key] = str(info[key])
        return self._append(entry, tokens_in, tokens_out, agent_seconds)

    def unstepped(self, before: Any, text: str, error: str | None, *, tokens_in: int = 0, tokens_out: int = 0,
                  agent_seconds: float | None = None) -> dict[str, Any]:
        """Log an action the env never received (the episode was stopped first), with why."""
        if self.first is None:
            self.first = messages_of(before)
        entry: dict[str, Any] = {"action": text, "calls": [], "added": [], "reward": 0.0, "terms": {},
                                 "stepped": False}
        if error:
            entry["error"] = error
        return self._append(entry, tokens_in, tokens_out, agent_seconds)

    def _append(self, entry: dict[str, Any], tokens_in: int, tokens_out: int,
                agent_seconds: float | None) -> dict[str, Any]:
        now = self._clock()
        entry.update(tokens_in=int(tokens_in), tokens_out=int(tokens_out), seconds=round(now - self._last, 6))
        if agent_seconds is not None:
            entry["agent_seconds"] = round(float(agent_seconds), 6)
        self._last = now
        self.steps.append(entry)
        return entry

    def fields(self, observation: Any) -> dict[str, Any]:
        """``first`` and ``steps`` for a record; ``observation``: the episode's first observation,
        used when no step was logged (an episode stopped before its first step)."""
        return {"first": self.first if self.first is not None else messages_of(observation), "steps": self.steps}


def record_fields(source: str) -> dict[str, Any]:
    """The keys every record starts with: the layout version and what wrote it."""
    if source not in SOURCES:
        raise ValueError(f"record source must be one of {SOURCES}, got {source!r}")
    return {"record": RECORD_VERSION, "source": source}


def result_fields(result: EpisodeResult | None) -> dict[str, Any]:
    """The record's keys from the env's result: ``result`` itself, and ``prediction``, ``gold``,
    ``em``, ``f1``, ``subem`` (the QA extras; None for other tasks) and ``success`` beside it."""
    scores = result.metrics() if result is not None else {}
    return {
        "result": None if result is None else result.to_dict(),
        "prediction": result.answer if result is not None else None,
        "gold": result.gold if result is not None else None,
        **{key: scores.get(key) for key in ("em", "f1", "subem", "success")},
    }


class RecordWriter:
    """An append-only JSONL file of records: each line written and flushed as it comes, so a kill
    loses at most the line being written (readers drop a last line without its newline)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = None

    def append(self, record: Mapping[str, Any]) -> None:
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def best_and_spread(values: Sequence[float], k: int) -> list[int]:
    """Indices of ``k`` of ``values`` to keep: the lowest and the highest, and the rest evenly spaced
    between them in sorted order (all of them when there are at most ``k``).

    >>> best_and_spread([0.5, 0.1, 0.9, 0.3, 0.7], 3)
    [1, 0, 2]
    """
    if k <= 0:
        return []
    order = sorted(range(len(values)), key=lambda i: (values[i], i))
    if len(order) <= k:
        return order
    if k == 1:
        return [order[-1]]
    picks = sorted({round(j * (len(order) - 1) / (k - 1)) for j in range(k)})
    return [order[p] for p in picks]
