"""The runner: calibration agents, resumability, time limits, prediction files, any env id."""

from __future__ import annotations

import json
import time

import pytest

from toolgym.benchmarks import Action, Agent, BenchConfig, run_benchmark
from toolgym.benchmarks.agents import OracleAgent, RandomAgent
from toolgym.benchmarks.reports import main_table
from toolgym.envs.multihop_qa.datasets import load_examples
from toolgym.envs.multihop_qa.metrics import exact_match, f1_score

from .conftest import REAL_FILES, REAL_IDS


def _config(tmp_path, **kw):
    return BenchConfig(**{"out": str(tmp_path / "out"), "progress": False, "n": 20, "batch_size": 4, **kw})


def _lines(out):
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def test_oracle_scores_one_and_random_about_zero_on_synthetic(tmp_path):
    results = run_benchmark(_config(tmp_path, agent="oracle", n=40))
    cell = results["cells"]["oracle"]["MultiHopQA-v0"]
    assert cell["n"] == 40 and cell["status"] == {"terminated": 40}
    assert cell["metrics"]["em"]["mean"] == 1.0 and cell["metrics"]["f1"]["mean"] == 1.0
    assert cell["metrics"]["evidence_recall"]["mean"] == 1.0
    results = run_benchmark(_config(tmp_path, agent="random", n=40))
    random_cell = results["cells"]["random"]["MultiHopQA-v0"]
    assert random_cell["metrics"]["em"]["mean"] <= 0.05
    assert results["agents"] == ["oracle", "random"]  # one directory accumulates rows
    table = (tmp_path / "out" / "results.md").read_text()
    assert "| oracle | 1.000 | 1.000 |" in table and "| random |" in table


@pytest.mark.slow
def test_oracle_scores_one_on_the_real_samples(tmp_path, real_env_kwargs):
    results = run_benchmark(_config(tmp_path, agent="oracle", envs=list(REAL_IDS.values()), n=1000,
                                    batch_size=16, env_kwargs=real_env_kwargs))
    for env_id in REAL_IDS.values():
        cell = results["cells"]["oracle"][env_id]
        assert cell["n"] > 50  # capped at the number of questions in the sample, each asked once
        assert cell["metrics"]["em"]["mean"] == 1.0, env_id
    assert results["average"]["oracle"]["em"] == 1.0
    assert "| Method | HotpotQA | 2Wiki | MuSiQue | Avg |" in main_table(results, "em")


def test_em_f1_equal_those_recomputed_from_the_official_prediction_files(tmp_path, shared_data, real_env_kwargs):
    out = tmp_path / "out"
    results = run_benchmark(_config(tmp_path, agent="naive-search", envs=list(REAL_IDS.values()), n=60,
                                    env_kwargs=real_env_kwargs))
    folder = out / "predictions" / "naive-search"
    for dataset, env_id in REAL_IDS.items():
        gold = {e.id: e.answers for e in load_examples(dataset, data_files=shared_data / REAL_FILES[dataset])}
        if dataset == "musique":
            rows = [json.loads(x) for x in (folder / f"{env_id}.jsonl").read_text().splitlines()]
            assert set(rows[0]) == {"id", "predicted_answer", "predicted_support_idxs", "predicted_answerable"}
            predictions = {r["id"]: r["predicted_answer"] for r in rows}
        else:
            payload = json.loads((folder / f"{env_id}.json").read_text())
            keys = {"answer", "sp", "evidence"} if dataset == "2wikimultihopqa" else {"answer", "sp"}
            assert set(payload) == keys and set(payload["sp"]) == set(payload["answer"])
            predictions = payload["answer"]
        assert len(predictions) == 60
        em = sum(exact_match(p, gold[i]) for i, p in predictions.items()) / len(predictions)
        f1 = sum(f1_score(p, gold[i]) for i, p in predictions.items()) / len(predictions)
        metrics = results["cells"]["naive-search"][env_id]["metrics"]
        assert metrics["em"]["mean"] == pytest.approx(em)
        assert metrics["f1"]["mean"] == pytest.approx(f1)
        assert 0.0 < f1  # a real check: some answers are right, some are wrong


class Interrupting(RandomAgent):
    """The random agent, interrupted (Ctrl-C) after a few batches."""

    def __init__(self, calls: int):
        self.calls = calls

    def act(self, slots):
        self.calls -= 1
        if self.calls < 0:
            raise KeyboardInterrupt
        return super().act(slots)


def test_interrupt_then_rerun_gives_the_same_table_without_duplicates(tmp_path):
    config = _config(tmp_path, agent="random", n=30)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(config, agent=Interrupting(calls=12))
    out = tmp_path / "out"
    partial = _lines(out)
    assert 0 < len(partial) < 30
    # A line cut short by the interrupt is dropped, not parsed as garbage.
    with open(out / "episodes.jsonl", "a") as fh:
        fh.write('{"agent": "random", "env": "MultiHop')
    resumed = run_benchmark(config)
    lines = _lines(out)
    keys = [(r["agent"], r["env"], r["index"]) for r in lines]
    assert len(keys) == len(set(keys)) == 30
    assert lines[: len(partial)] == partial  # nothing written before was touched
    clean = run_benchmark(_config(tmp_path, agent="random", n=30, out=str(tmp_path / "clean")))
    for metric in ("em", "f1", "return"):
        assert main_table(resumed, metric) == main_table(clean, metric)
    def untimed(record):  # timings differ from run to run; everything else must not
        steps = [{k: v for k, v in step.items() if k != "seconds"} for step in record["steps"]]
        return {**{k: v for k, v in record.items() if k not in ("wall_time", "seconds")}, "steps": steps}

    by_key = {r["index"]: untimed(r) for r in lines}
    for r in _lines(tmp_path / "clean"):
        assert by_key[r["index"]] == untimed(r)


@pytest.mark.slow
def test_rerun_skips_finished_episodes_and_extends_n(tmp_path):
    class Counting(OracleAgent):
        episodes = set()

        def act(self, slots):
            self.episodes.update(s.index for s in slots)
            return super().act(slots)

    run_benchmark(_config(tmp_path, agent="oracle", n=10), agent=Counting())
    Counting.episodes = set()
    run_benchmark(_config(tmp_path, agent="oracle", n=10), agent=Counting())
    assert Counting.episodes == set()
    run_benchmark(_config(tmp_path, agent="oracle", n=15), agent=Counting())
    assert Counting.episodes == set(range(10, 15))


def test_results_do_not_depend_on_batch_size(tmp_path):
    a = run_benchmark(_config(tmp_path, agent="random", n=12, batch_size=1, out=str(tmp_path / "a")))
    b = run_benchmark(_config(tmp_path, agent="random", n=12, batch_size=5, out=str(tmp_path / "b")))
    assert main_table(a, "f1") == main_table(b, "f1")


class Slow(Agent):
    name = "slow"

    def act(self, slots):
        time.sleep(0.3)
        return [Action("<tool_call>{\"name\": \"search\", \"arguments\": {\"query\": \"x\"}}</tool_call>",
                       tokens_in=5, tokens_out=2) for _ in slots]


def test_time_limit_ends_slow_episodes(tmp_path):
    run_benchmark(_config(tmp_path, agent="oracle", n=4))
    results = run_benchmark(_config(tmp_path, agent="oracle", n=4, time_limit=0.2, name="slow"), agent=Slow())
    cell = results["cells"]["slow"]["MultiHopQA-v0"]
    assert cell["status"] == {"timeout": 4}
    assert cell["metrics"]["em"]["mean"] == 0.0  # an unanswered episode scores 0, it is not dropped
    rows = [r for r in _lines(tmp_path / "out") if r["agent"] == "slow"]
    assert all("own time passed 0.2 s" in r["error"] and r["tokens_in"] == 5 for r in rows)


def test_agent_errors_end_the_episode_with_status_error(tmp_path):
    class Failing(Agent):
        name = "failing"

        def act(self, slots):
            return [Action("", error="the model server said no") for _ in slots]

    results = run_benchmark(_config(tmp_path, agent="oracle", n=3, name="failing"), agent=Failing())
    assert results["cells"]["failing"]["MultiHopQA-v0"]["status"] == {"error": 3}


def test_generic_env_without_qa_metrics(tmp_path):
    results = run_benchmark(_config(tmp_path, agent="oracle", envs=["ToolMath-v0"], n=10))
    cell = results["cells"]["oracle"]["ToolMath-v0"]
    assert cell["metrics"]["return"]["mean"] > 0
    assert cell["primary"] in ("em", "success")
    assert cell["metrics"][cell["primary"]]["mean"] == 1.0


def test_a_label_keeps_one_configuration(tmp_path):
    run_benchmark(_config(tmp_path, agent="oracle", n=2))
    with pytest.raises(ValueError, match="another configuration.*seed"):
        run_benchmark(_config(tmp_path, agent="oracle", n=2, seed=5))


def test_config_errors_say_what_to_do():
    with pytest.raises(ValueError, match="Did you mean 'naive-rag'"):
        BenchConfig(agent="naive-rga")
    with pytest.raises(ValueError, match="time_limit"):
        BenchConfig(time_limit=0)
    with pytest.raises(ValueError, match="needs a model"):
        run_benchmark(BenchConfig(agent="naive-rag", progress=False))
    assert BenchConfig(envs="A-v0, B-v0").envs == ["A-v0", "B-v0"]
    config = BenchConfig(env_kwargs={"corpus": "example", "A-v0:limit": 3})
    assert config.kwargs_for("A-v0") == {"corpus": "example", "limit": 3}
    assert config.kwargs_for("B-v0") == {"corpus": "example"}
