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
    assert '"result"' in out and '"gold"' in out


def test_play_quits_cleanly_on_end_of_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["play", "MultiHopQA-v0", "--kwargs", "world={n_people: 60}"]) == 0


def test_play_submits_a_message_pending_at_end_of_input(monkeypatch, capsys):
    # piped input often ends right after the last message, with no empty line after it
    typed = '<tool_call>{"name": "answer", "arguments": {"answer": "nobody"}}</tool_call>'
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    assert main(["play", "MultiHopQA-v0", "--kwargs", "world={n_people: 60}"]) == 0
    assert "episode over (terminated)" in capsys.readouterr().out


def test_play_writes_plain_text_when_stdout_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("hello\n\n"))
    assert main(["play", "MultiHopQA-v0", "--kwargs", "world={n_people: 60}"]) == 0
    out = capsys.readouterr().out
    assert "[system]" in out and "\033[" not in out


def test_episodes_prints_a_score_table(capsys):
    assert main(["episodes", "MultiHopQA-v0", "-n", "20", "--kwargs", "world={n_people: 60}"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line[:1].isalpha()}
    assert float(rows["oracle"][1]) == 1.0 and float(rows["no-search"][1]) == 0.0


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``toolgym ARGV`` expecting a user error: exit 2 and one line on stderr, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, fragments", [
    (["episodes", "--kwargs", "top_k"], ["toolgym episodes:", "expected key=value, got 'top_k'"]),
    (["episodes", "--agents", "oracl", "--kwargs", "world={n_people: 60}"], ["Did you mean 'oracle'"]),
    (["episodes", "Wordle-v0", "--agents", "naive-search"], ["needs a search tool"]),
    (["episodes", "NoSuch-v0"], ["Unknown env id 'NoSuch-v0'", "Valid choices"]),
    (["play", "MultiHopQA-v1"], ["toolgym play:", "Did you mean 'MultiHopQA-v0'"]),
    (["play", "MultiHopQA-v0", "--kwargs", "bogus=1"], ["Unknown MultiHopQA-v0 keyword argument 'bogus'"]),
    (["episodes", "MultiHopQA-v0", "--kwargs", "top_kk=1"], ["Did you mean 'top_k'"]),
    (["episodes", "MultiHopQA-v0", "--kwargs", "format=herms", "world={n_people: 60}"], ["Did you mean 'hermes'"]),
    (["episodes", "MultiHopQA-v0", "--kwargs", "dataset=hotpotqa", "data_files=/no/such/file.json"],
     ["/no/such/file.json"]),
    (["episodes", "MultiHopQA-v0", "--kwargs", "max_turns=abc"],
     ["toolgym episodes: max_turns must be an integer, got str 'abc' (for example max_turns=8)."]),
    (["play", "SQLQuery-v0", "--kwargs", "max_seconds=[2]"], ["max_seconds must be a number, got list [2]"]),
])
def test_mistakes_are_one_line_with_exit_2(capsys, argv, fragments):
    err = one_line_error(capsys, argv)
    assert all(f in err for f in fragments), err


def test_a_dataset_format_error_is_one_line_naming_the_file(capsys, tmp_path):
    bad = tmp_path / "dev.json"
    bad.write_text('[{"_id": "x", "question": "q?"')  # cut inside the first record
    err = one_line_error(capsys, ["episodes", "MultiHopQA-v0", "--kwargs", "dataset=hotpotqa", f"data_files={bad}"])
    assert "dev.json" in err


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="Unknown env id 'NoSuch-v0'"):
        main(["--debug", "episodes", "NoSuch-v0"])
    with pytest.raises(ValueError, match="Unknown env id"):
        main(["episodes", "NoSuch-v0", "--debug"])


def test_episodes_runs_the_oracle_on_any_env(capsys):
    assert main(["episodes", "Wordle-v0", "-n", "5"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line[:1].isalpha()}
    assert float(rows["oracle"][1]) == 1.0 and "naive-search" not in rows


def test_a_missing_extra_is_one_line_naming_it(capsys, monkeypatch):
    import sys
    from pathlib import Path

    monkeypatch.setitem(sys.modules, "trl", None)  # as on an install without the train extra
    config = Path(__file__).resolve().parents[1] / "configs" / "demo_cpu.yaml"
    err = one_line_error(capsys, ["train", "--config", str(config)])
    assert "trl" in err and "pip install 'toolgym[train]'" in err


def test_an_unrelated_env_id_gets_no_suggestion(capsys):
    err = one_line_error(capsys, ["episodes", "NoSuch-v0"])
    assert "Did you mean" not in err and "Valid choices" in err
    assert "Did you mean 'HotpotQA-v0'" in one_line_error(capsys, ["play", "hotpotqa-v1"])


@pytest.mark.slow
def test_hub_unreachable_is_one_line_naming_the_hub_id_and_the_fix(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("datasets")
    # An empty cache and offline mode: the load fails the way it does on a machine without network.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "toolgym.cli", "episodes", "HotpotQA-v0"], env=env,
                          cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("toolgym episodes: Could not load HotpotQA from the hub (hotpotqa/hotpot_qa"), err
    assert "HF_HUB_OFFLINE is set" in err and "data_files=" in err, err


def test_overrides_may_follow_options(capsys):
    """`demo --seed 1 key=value`: the override after an option reaches the settings (and is checked)."""
    assert main(["demo", "warm_steps=3", "--seed", "1", "rl_stpes=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown setting 'rl_stpes=3'. Did you mean 'rl_steps'" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:  # anything else left over is still argparse's error
        main(["demo", "--seed", "1", "--nope"])
    assert exit_.value.code == 2 and "unrecognized arguments: --nope" in capsys.readouterr().err
