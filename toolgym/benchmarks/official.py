"""Prediction and gold files that each dataset's official evaluation script scores as it is.

For every (agent, env) of HotpotQA, 2WikiMultihopQA and MuSiQue, ``write_official`` writes the
predictions and, beside them, the gold file cut to the same questions in the same order: each
official script divides by the size of its gold file (and MuSiQue's wants the two files line for
line), so scoring ``--n 50`` against the full dev file would be wrong.

    python hotpot_evaluate_v1.py       predictions/AGENT/HotpotQA-v0.json   predictions/AGENT/HotpotQA-v0.gold.json
    python 2wikimultihop_evaluate.py   predictions/AGENT/TwoWikiMultihopQA-v0.json  ...gold.json
    python evaluate_v1.0.py            predictions/AGENT/MuSiQue-v0.jsonl   predictions/AGENT/MuSiQue-v0.gold.jsonl

What is predicted. The agents answer; they do not name supporting sentences. The supporting
facts are filled from what the agent *retrieved*: every paragraph of the example's own context
that its searches returned (matched as the env matches evidence) counts as predicted support.
HotpotQA and 2Wiki ``sp`` list every sentence of those paragraphs (so sp precision is low by
construction and sp recall is paragraph-level recall); MuSiQue ``predicted_support_idxs`` lists
their ``idx``. 2Wiki's ``evidence`` (relation triples) is empty: no agent extracts triples.

The gold files hold the fields the scripts read, rebuilt from the loaded examples (ids, answers
and aliases, supporting facts, evidences, paragraph ``idx``/``is_supporting``), not the records'
full text. Episodes store both parts (``gold_record``, ``predicted_support``), so ``toolgym bench
report`` rewrites the files without the data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: Datasets with an official script, and the suffix of their prediction files.
OFFICIAL = {"hotpotqa": ".json", "2wikimultihopqa": ".json", "musique": ".jsonl"}


def _idx(passage_id: str) -> int:
    """MuSiQue paragraphs keep their ``idx`` in the passage id ``f"{example_id}-{idx}"``."""
    return int(passage_id.rsplit("-", 1)[1])


def gold_record(dataset: str, example) -> dict[str, Any]:
    """The fields of ``example``'s official record that the dataset's script reads."""
    if dataset == "musique":
        support = set(example.supporting_idxs)
        return {
            "id": example.id,
            "question": example.question,
            "answer": example.answer,
            "answer_aliases": list(example.aliases),
            "answerable": True,
            "paragraphs": [{"idx": _idx(p.id), "title": p.title, "is_supporting": _idx(p.id) in support}
                           for p in example.context],
        }
    record = {
        "_id": example.id,
        "question": example.question,
        "answer": example.answer,
        "type": example.type,
        "supporting_facts": [[title, sent] for title, sent in example.supporting_facts],
    }
    if dataset == "2wikimultihopqa":
        record["evidences"] = [list(e) for e in example.meta.get("evidences", [])]
    return record


def predicted_support(dataset: str, example, retrieved: Sequence[int]) -> list:
    """Supporting facts from the example's paragraphs the agent retrieved (indices into ``context``)."""
    if dataset == "musique":
        return [_idx(example.context[i].id) for i in retrieved]
    counts = example.meta.get("n_sentences") or []
    return [[example.context[i].title, j] for i in retrieved for j in range(counts[i] if i < len(counts) else 0)]


def episode_fields(env, info: Mapping[str, Any]) -> dict[str, Any]:
    """What one finished episode adds to its record for the official files ({} for other envs)."""
    dataset, example = getattr(env, "dataset", None), getattr(env, "example", None)
    if dataset not in OFFICIAL or example is None:
        return {}
    retrieved = [i for i in info.get("retrieved_context") or () if 0 <= i < len(example.context)]
    return {"gold_record": gold_record(dataset, example),
            "predicted_support": predicted_support(dataset, example, retrieved)}


def write_official(dataset: str, rows: Sequence[Mapping[str, Any]], path: Path) -> list[Path]:
    """Predictions of ``rows`` (one agent on one env, in index order) at ``path``, and their gold
    file beside them (``<name>.gold<suffix>``) when the episodes carry their gold records."""
    ids = [str(r["id"]) for r in rows]
    answers = [r.get("prediction") or "" for r in rows]
    support = [list(r.get("predicted_support") or []) for r in rows]
    if dataset == "musique":
        lines = [{"id": i, "predicted_answer": a, "predicted_support_idxs": s, "predicted_answerable": True}
                 for i, a, s in zip(ids, answers, support)]
        path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
    else:
        payload: dict[str, Any] = {"answer": dict(zip(ids, answers)), "sp": dict(zip(ids, support))}
        if dataset == "2wikimultihopqa":
            payload["evidence"] = {i: [] for i in ids}
        path.write_text(json.dumps(payload, ensure_ascii=False, indent=1))
    written = [path]
    golds = [r.get("gold_record") for r in rows]
    if golds and all(golds):
        gold_path = path.with_name(path.name.removesuffix(path.suffix) + ".gold" + path.suffix)
        if dataset == "musique":
            gold_path.write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in golds))
        else:
            gold_path.write_text(json.dumps(golds, ensure_ascii=False, indent=1))
        written.append(gold_path)
    return written
