"""Episode records of training (``OUTPUT_DIR/episodes.jsonl``): a bounded sample of each step's
episodes, stored whole, with what the update did with every turn.

Each generation step keeps ``log_episodes`` of the episodes this process sampled: the worst and the
best by return and the rest spread evenly between them (:func:`toolgym.envs.record.best_and_spread`).
A record is the episode record of :mod:`toolgym.envs.record` (``source: "train"``) plus ``step``
(the optimiser step), ``mode`` (train or eval), ``group`` and, on every step, ``train``: the step's
advantage, one mask character per token of the step's segment (its sampled tokens, trained: 1; the
env's tokens after them, masked: 0), the text of each of those tokens, and per-token advantages
where they vary within the step (PPO's token-level GAE). Lines are appended and flushed as they
are written, as the benchmark's are.

Torch-free: the advantages come in as nested lists (a row's one value, or a row's per-token values).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from toolgym.envs.record import RecordWriter, best_and_spread, record_fields, result_fields
from toolgym.envs.result import EpisodeResult
from toolgym.trainers.rollout import Episode

FILE = "episodes.jsonl"


def status_of(ep: Episode) -> str:
    if ep.budget_truncated:
        return "budget"
    return "terminated" if ep.terminated else "truncated"


def token_pieces(ids: Sequence[int], decode) -> list[str]:
    """The text of each token of ``ids`` (``decode(list_of_ids) -> str``); a character split across
    byte-level tokens is shown on its last token, its first ones get "", so the pieces join to the text."""
    out, start = [], 0
    for k in range(len(ids)):
        text = decode(list(ids[start:k + 1]))
        if text.endswith("\ufffd") and k + 1 < len(ids) and k - start < 3:
            out.append("")
            continue
        out.append(text)
        start = k + 1
    return out


def step_training(ep: Episode, rows: Mapping[tuple[int, int], int], i: int, advantages: Sequence,
                  token_text) -> list[dict[str, Any]]:
    """The ``train`` entry of each step of episode ``i``: ``rows`` maps (episode, sample) to its row in
    ``advantages`` (one number per row, or one per completion token of the row)."""
    out = []
    for k, step in enumerate(ep.steps):
        sample = ep.samples[step.sample]
        nxt = next((s.start for s in ep.steps[k + 1:] if s.sample == step.sample), len(sample.completion_ids))
        row = advantages[rows[(i, step.sample)]]
        entry: dict[str, Any] = {"mask": "".join("1" if m else "0" for m in sample.env_mask[step.start:nxt]),
                                 "tokens": token_pieces(sample.completion_ids[step.start:nxt], token_text)}
        if isinstance(row, (int, float)):
            entry["advantage"] = float(row)
        else:
            values = [float(v) for v in row[step.start:step.end]]
            entry["advantage"] = sum(values) / len(values) if values else 0.0
            if values and max(values) - min(values) > 1e-6:
                entry["token_advantages"] = [round(v, 4) for v in row[step.start:nxt]]
        out.append(entry)
    return out


def training_records(episodes: Sequence[Episode], tasks: Sequence[Mapping[str, Any]], env_ids: Sequence[str],
                     advantages: Sequence, rows: Mapping[tuple[int, int], int], *, keep: int, step: int, mode: str,
                     run: str, group_size: int, token_text) -> list[dict[str, Any]]:
    """Records of ``keep`` of ``episodes`` (best and worst by return included; see the module docstring).

    ``tasks[i]``: the task of episode ``i`` (``env``: index into ``env_ids``, ``seed``);
    ``token_text(ids)``: the text of some token ids (``tokenizer.decode``)."""
    records = []
    for i in sorted(best_and_spread([ep.ret for ep in episodes], keep)):
        ep = episodes[i]
        fields = ep.log.fields(ep.messages)
        steps = [{**entry, "train": train}
                 for entry, train in zip(fields["steps"], step_training(ep, rows, i, advantages, token_text),
                                         strict=True)]
        result = EpisodeResult.from_info(ep.info)
        records.append({
            **record_fields("train"),
            "env": env_ids[tasks[i]["env"]],
            "agent": run,
            "seed": tasks[i].get("seed"),
            "step": int(step),
            "mode": mode,
            "group": i // max(group_size, 1),
            "status": status_of(ep),
            **result_fields(result),
            "return": ep.ret,
            "turns": len(ep.steps),
            "tool_calls": int(ep.info.get("tool_calls", 0)),
            "tokens_in": len(ep.prompt_ids),
            "tokens_out": ep.sampled_tokens,
            "wall_time": round(sum(s["seconds"] for s in steps), 6),
            "first": fields["first"],
            "steps": steps,
        })
    return records


class TrainingEpisodeLog:
    """Appends :func:`training_records` to ``path`` (one writer per run, on the main process)."""

    def __init__(self, path, keep: int):
        if keep < 0:
            raise ValueError(f"log_episodes must be >= 0 (0 turns the episode records off), got {keep}")
        self.keep = keep
        self.writer = RecordWriter(path)

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        for record in records:
            self.writer.append(record)
