"""The ``toolgym`` command from a user's seat: envs, play and episodes."""

from __future__ import annotations

import io
import json

import pytest

from toolgym.cli import main


def test_envs_lists_every_id(capsys):
    from toolgym.envs.registration import env_ids

    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert all(env_id in out for env_id in env_ids())


def test_play_an_episode_from_stdin(monkeypatch, capsys):
    from toolgym.envs.multihop_qa.synthetic import build_world

    title = build_world(n_people=60).questions("train")[0].supporting_titles[0]
    typed = "\n".join([
        "not a call", "",
        json.dumps({"name": "search", "arguments": {"query": title}}).join(["<tool_call>", "</tool_call>"]), "",
        '<tool_call>{"name": "answer", "arguments": {"answer": "nobody"}}</tool_call>', "",
    ])
    monkeypatch.setattr("sys.stdin", io.StringIO(typed + "\n"))
    assert main(["play", "MultiHopQA-v0", "--seed", "0", "--kwargs", "world={n_people: 60}"]) == 0
    out = capsys.readouterr().out
    assert "parse_error: no tool call found" in out
    assert "Doc 1" in out and "episode over (terminated)" in out
    assert '"gold_answer"' in out


def test_play_quits_cleanly_on_end_of_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["play", "MultiHopQA-v0", "--kwargs", "world={n_people: 60}"]) == 0


def test_episodes_prints_a_score_table(capsys):
    assert main(["episodes", "MultiHopQA-v0", "-n", "20", "--kwargs", "world={n_people: 60}"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line[:1].isalpha()}
    assert float(rows["oracle"][1]) == 1.0 and float(rows["no-search"][1]) == 0.0


def test_bad_overrides_and_agents_say_what_was_wrong():
    with pytest.raises(SystemExit, match="expected key=value, got 'top_k'"):
        main(["episodes", "--kwargs", "top_k"])
    with pytest.raises(SystemExit, match="Did you mean 'oracle'"):
        main(["episodes", "--agents", "oracl", "--kwargs", "world={n_people: 60}"])


def test_episodes_runs_the_oracle_on_any_env(capsys):
    assert main(["episodes", "Wordle-v0", "-n", "5"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line[:1].isalpha()}
    assert float(rows["oracle"][1]) == 1.0 and "naive-search" not in rows
    with pytest.raises(SystemExit, match="needs a search tool"):
        main(["episodes", "Wordle-v0", "--agents", "naive-search"])
