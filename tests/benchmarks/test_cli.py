"""``toolgym bench``: run, report and compare from the command line."""

from __future__ import annotations

import json
import sys

import pytest

from toolgym.cli import main


@pytest.mark.slow
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
                          (["bench", "compare", "x"], "two result directories"),
                          (["bench", "--envs", "NoSuch-v0"], "Unknown env id 'NoSuch-v0'"),
                          (["bench", "--env-kwargs", "topk=3"], "Did you mean 'top_k'"),
                          (["bench", "report", str(tmp_path / "nowhere")], "a results directory written by")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_bench_without_matplotlib_writes_everything_but_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on an install without the bench extra
    out = tmp_path / "o"
    assert main(["bench", "--agent", "oracle", "--out", str(out), "--n", "3", "--progress", "false",
                 "--env-kwargs", "world={n_people: 60}"]) == 0
    captured = capsys.readouterr()
    assert "plots skipped: matplotlib is not installed" in captured.err and "toolgym[bench]" in captured.err
    for name in ("results.json", "results.md", "episodes.jsonl", "manifest.json", "predictions"):
        assert (out / name).exists(), name
    assert not (out / "plots").exists() and "plots/" not in (out / "results.md").read_text()
    assert "plots/" not in captured.out.splitlines()[-1]


def test_bench_without_reports_says_what_it_wrote(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["bench", "--agent", "oracle", "--out", str(out), "--n", "2", "--progress", "false",
                 "--reports", "false", "--env-kwargs", "world={n_people: 60}"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "(episodes.jsonl, manifest.json)" in last and "toolgym bench report" in last
    assert sorted(p.name for p in out.iterdir()) == ["episodes.jsonl", "manifest.json"]


def test_bench_help_shows_each_default_once_and_no_internal_notes(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Module-level" not in text and "(default: None)" not in text
    assert "(default $OPENAI_API_KEY)" in text and "--envs ENVS env ids to evaluate on (default: MultiHopQA-v0)" in text


@pytest.fixture
def model_options(monkeypatch) -> dict:
    """The options the bench passes to build_chat_model, which then stops the run (exit 2)."""
    seen = {}

    def fake_build_chat_model(**options):
        seen.update(options)
        raise SystemExit("stop before loading a model")

    monkeypatch.setattr("toolgym.benchmarks.agents.build_chat_model", fake_build_chat_model)
    return seen


def test_bench_chat_template_kwargs_reach_the_local_model(model_options, tmp_path, capsys):
    seen = model_options
    assert main(["bench", "--agent", "tool-call", "--model", "some/model", "--out", str(tmp_path / "r"),
                 "--chat-template-kwargs", "enable_thinking=true", "reasoning_effort=low", "--progress", "false"]) == 2
    assert "stop before loading" in capsys.readouterr().err
    assert seen["chat_template_kwargs"] == {"enable_thinking": True, "reasoning_effort": "low"}


def test_bench_request_options_are_repeatable_yaml_pairs_for_the_endpoint(model_options, tmp_path, capsys):
    seen = model_options
    assert main(["bench", "--agent", "openai", "--model", "smollm2", "--base-url", "http://127.0.0.1:1/v1",
                 "--out", str(tmp_path / "r"), "--request-options", "repeat_penalty=1.0", "stop=[x, y]",
                 "--request-options", "top_k=1", "--request-timeout", "30", "--progress", "false"]) == 2
    assert "stop before loading a model" in capsys.readouterr().err
    assert seen["request_options"] == {"repeat_penalty": 1.0, "stop": ["x", "y"], "top_k": 1}
    assert seen["request_timeout"] == 30.0
    assert main(["bench", "--agent", "openai", "--model", "m", "--request-options", "temperature=1"]) == 2
    assert "set them with temperature (--temperature) instead" in capsys.readouterr().err


def test_bench_config_file_with_flags_winning(tmp_path, capsys):
    """--config reads bench fields from YAML (or a train config's bench: section); flags win over it
    and --env-kwargs adds to its env_kwargs."""
    bench = {"agent": "no-search", "n": 3, "progress": False, "out": str(tmp_path / "from-file"),
             "env_kwargs": {"format": "tags", "max_turns": 3}}
    plain = tmp_path / "bench.yaml"
    plain.write_text(json.dumps(bench))  # JSON is YAML
    assert main(["bench", "--config", str(plain)]) == 0
    rows = [json.loads(x) for x in (tmp_path / "from-file" / "episodes.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and {r["agent"] for r in rows} == {"no-search"}

    train = tmp_path / "train.yaml"
    train.write_text(json.dumps({"model": "m", "envs": [{"id": "MultiHopQA-v0"}], "bench": bench}))
    out = tmp_path / "flags"
    assert main(["bench", "--config", str(train), "--agent", "oracle", "--n", "2", "--out", str(out),
                 "--env-kwargs", "max_turns=5"]) == 0
    rows = [json.loads(x) for x in (out / "episodes.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and {r["agent"] for r in rows} == {"oracle"} and all(r["em"] == 1.0 for r in rows)
    manifest = json.loads((out / "manifest.json").read_text())["oracle"]
    assert manifest["env_kwargs"] == {"format": "tags", "max_turns": 5}
    capsys.readouterr()

    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: oracle\nnn: 3\n")
    for argv, message in ((["bench", "--config", str(bad)], "Did you mean 'n'"),
                          (["bench", "--config", str(tmp_path / "missing.yaml")], "cannot read it")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_compare_two_agents_of_one_directory_with_a_pooled_row(tmp_path, capsys):
    out = tmp_path / "table"
    common = ["--envs", "MultiHopQA-v0,ToolMath-v0", "--n", "4", "--progress", "false", "--out", str(out)]
    assert main(["bench", "--agent", "oracle", "--name", "oracle: the ceiling", *common]) == 0
    assert main(["bench", "--agent", "random", *common]) == 0
    capsys.readouterr()
    assert main(["bench", "compare", f"{out}:random", f"{out}:oracle: the ceiling"]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if "| success |" in line]
    assert [row[2] for row in rows] == ["MultiHopQA", "ToolMath", "all"]
    (_, _, _, _, n, a, b, *_), per_env = rows[-1], rows[:-1]
    assert n == "8" and b == "1.000" and rows[-1][-1] == "yes |"
    assert float(a) == sum(float(row[5]) for row in per_env) / 2  # 4 episodes in each env
    assert main(["bench", "compare", f"{out}:random", f"{out}:orcale"]) == 2
    assert "Unknown agent label 'orcale'. Valid choices: oracle: the ceiling, random." in capsys.readouterr().err
