"""``toolgym bench --suite search-r1 --corpus ...``: the seven sets over one corpus, printed in
Search-R1's layout, with the Agent-R1 layout for the three multi-hop sets."""

from __future__ import annotations

import json

import pytest

from toolgym.benchmarks import BenchConfig
from toolgym.benchmarks.reports import markdown, search_r1_table
from toolgym.benchmarks.suites import SUITES
from toolgym.cli import main
from toolgym.envs.multihop_qa.corpus import pooled_corpus
from toolgym.envs.multihop_qa.datasets import load_examples

from .conftest import REAL_FILES, REAL_IDS

QA_IDS = {"NQ-v0": "nq", "TriviaQA-v0": "triviaqa", "PopQA-v0": "popqa", "Bamboogle-v0": "bamboogle"}
HEAD = ("| Method | NQ | TriviaQA | PopQA | HotpotQA | 2wiki | Musique | Bamboogle | General QA avg | "
        "Multi-hop avg | Avg |")


def _suite_files(tmp_path, shared_data) -> list[str]:
    """A FlashRAG-style file per open-domain set and one JSONL corpus holding the answers' passages
    and the paragraphs of the first multi-hop questions."""
    passages = [{"id": "w1", "contents": '"Tosca"\nTosca is an opera by Giacomo Puccini.'},
                {"id": "w2", "contents": '"Mona Lisa"\nThe Mona Lisa was painted by Leonardo da Vinci.'}]
    kwargs = []
    for env_id, name in QA_IDS.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in [
            {"id": "test_0", "question": "Who wrote Tosca?", "golden_answers": ["Giacomo Puccini", "Puccini"]},
            {"id": "test_1", "question": "Who painted the Mona Lisa?", "golden_answers": ["Leonardo da Vinci"]},
        ]))
        kwargs.append(f"{env_id}:data_files={path}")
    examples = []
    for dataset, env_id in REAL_IDS.items():
        examples += load_examples(dataset, data_files=shared_data / REAL_FILES[dataset], limit=2)
        kwargs.append(f"{env_id}:data_files={shared_data / REAL_FILES[dataset]}")
    passages += [{"id": p.id, "title": p.title, "text": p.text} for p in pooled_corpus(examples)]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in passages))
    return ["--corpus", str(corpus), "--env-kwargs", *kwargs]


@pytest.mark.slow
def test_search_r1_suite_over_one_corpus(tmp_path, shared_data, capsys):
    out = tmp_path / "out"
    argv = ["bench", "--agent", "oracle", "--suite", "search-r1", "--n", "2", "--out", str(out),
            "--progress", "false", *_suite_files(tmp_path, shared_data)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert HEAD in printed
    assert "| oracle | " + " | ".join(["1.000"] * 10) + " |" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["envs"] == list(SUITES["search-r1"])
    for env_id in QA_IDS:  # no gold evidence: no recall at all, never 0
        assert "evidence_recall" not in results["cells"]["oracle"][env_id]["metrics"]
    for env_id in REAL_IDS.values():  # gold titles over the external corpus
        assert results["cells"]["oracle"][env_id]["metrics"]["evidence_recall"]["mean"] > 0
    report = (out / "results.md").read_text()
    assert "## Exact match (EM), Search-R1 layout" in report and "## F1, Agent-R1 layout" in report
    assert "| Method | HotpotQA | 2Wiki | MuSiQue | Avg |" in report
    row = next(line for line in report.splitlines() if line.startswith("| oracle | NQ |"))
    assert "| n/a |" in row
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["oracle"]["env_kwargs"]["corpus"].endswith("corpus.jsonl")


def _results(cells: dict[str, dict[str, float]]) -> dict:
    envs = list(next(iter(cells.values())))
    return {"agents": list(cells), "envs": envs, "average": {},
            "cells": {a: {e: {"n": 1, "metrics": {"em": {"mean": v, "ci95": [v, v]}}, "status": {}}
                          for e, v in per.items()} for a, per in cells.items()}}


def test_search_r1_table_averages_each_group_and_all_seven():
    values = dict(zip(SUITES["search-r1"], [0.4, 0.5, 0.3, 0.2, 0.1, 0.0, 0.6]))
    table = search_r1_table(_results({"agent": values}))
    assert table.splitlines()[0] == HEAD
    assert table.splitlines()[2] == ("| agent | 0.400 | 0.500 | 0.300 | 0.200 | 0.100 | 0.000 | 0.600 | 0.400 | "
                                     "0.225 | 0.300 |")


def test_a_set_not_run_leaves_its_cell_and_averages_empty():
    values = dict(zip(SUITES["search-r1"][:3], [0.4, 0.5, 0.3]))
    table = search_r1_table(_results({"agent": values}))
    assert table.splitlines()[2] == "| agent | 0.400 | 0.500 | 0.300 | – | – | – | – | 0.400 | – | – |"
    assert "Search-R1 layout" in markdown(_results({"agent": values}))


def test_suite_config():
    config = BenchConfig(suite="search-r1", corpus="wiki.jsonl", env_kwargs={"top_k": 3})
    assert config.envs == list(SUITES["search-r1"])
    assert config.env_kwargs == {"corpus": "wiki.jsonl", "top_k": 3}
    assert BenchConfig(suite="agent-r1").envs == ["HotpotQA-v0", "TwoWikiMultihopQA-v0", "MuSiQue-v0"]
    with pytest.raises(ValueError, match="Unknown suite 'search-r2'. Did you mean 'search-r1'"):
        BenchConfig(suite="search-r2")
    with pytest.raises(ValueError, match="give a suite or envs, not both"):
        BenchConfig(suite="search-r1", envs=["NQ-v0"])
    with pytest.raises(ValueError, match="differ: give one"):
        BenchConfig(corpus="a.jsonl", env_kwargs={"corpus": "b.jsonl"})
