"""``toolgym bench``: run, report and compare from the command line."""

from __future__ import annotations

import json

import pytest

from toolgym.cli import main


def test_bench_run_report_and_compare(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--envs", "MultiHopQA-v0", "--n", "12", "--batch-size", "4", "--progress", "false"]
    assert main(["bench", "--agent", "oracle", "--out", str(a), *common]) == 0
    assert "| oracle | 1.000 | 1.000 |" in capsys.readouterr().out
    assert main(["bench", "--agent", "random", "--out", str(b), *common]) == 0
    for name in ("results.json", "results.md", "plots/em.png", "plots/per_turn.png", "manifest.json"):
        assert (a / name).is_file(), name
    capsys.readouterr()

    assert main(["bench", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "| oracle | random | MultiHopQA | em |" in line)
    assert "| 12 | 1.000 | 0.000 | -1.000 * |" in row and "| yes |" in row  # paired by episode index

    (a / "results.md").unlink()
    assert main(["bench", "report", str(a)]) == 0
    assert (a / "results.md").is_file()
    assert json.loads((a / "results.json").read_text())["agents"] == ["oracle"]


def test_bench_env_kwargs_and_errors(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["bench", "--agent", "no-search", "--out", str(out), "--n", "3", "--progress", "false",
                 "--env-kwargs", "format=tags", "MultiHopQA-v0:max_turns=2"]) == 0
    rows = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert all(r["turns"] == 1 and r["em"] == 0.0 for r in rows)
    for argv, message in ((["bench", "--agent", "orcale"], "Did you mean 'oracle'"),
                          (["bench", "comapre", "x", "y"], "Did you mean 'compare'"),
                          (["bench", "compare", "x"], "two result directories")):
        try:
            main(argv)
        except SystemExit as err:
            assert message in str(err)
        else:
            raise AssertionError(f"{argv} should fail")


def test_bench_chat_template_kwargs_reach_the_local_model(monkeypatch, tmp_path):
    seen = {}

    def fake_build_chat_model(**options):
        seen.update(options)
        raise SystemExit("stop before loading a model")

    monkeypatch.setattr("toolgym.benchmarks.agents.build_chat_model", fake_build_chat_model)
    with pytest.raises(SystemExit, match="stop before loading"):
        main(["bench", "--agent", "tool-call", "--model", "some/model", "--out", str(tmp_path / "r"),
              "--chat-template-kwargs", "enable_thinking=true", "reasoning_effort=low", "--progress", "false"])
    assert seen["chat_template_kwargs"] == {"enable_thinking": True, "reasoning_effort": "low"}
