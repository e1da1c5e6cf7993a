"""The episode record: real records of every registered env (bench with the oracle, and the
scripted episodes of `toolgym episodes`) validate against the JSON Schema and hold the conversation."""

from __future__ import annotations

import json

import pytest

from toolgym.benchmarks.agents import Action, OracleAgent
from toolgym.benchmarks.runner import BenchConfig, run_benchmark
from toolgym.envs.record import EpisodeLog, added_messages, best_and_spread, schema
from toolgym.envs.registration import env_ids
from toolgym.envs.scripted import SCRIPTED_AGENTS, run_episode

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (the dev extra) checks records against the schema")
VALIDATOR = jsonschema.Draft202012Validator(schema())


def _bench(tmp_path, env_id, kwargs, agent=None, **config):
    out = tmp_path / "out"
    run_benchmark(BenchConfig(agent="oracle", envs=[env_id], n=2, out=str(out), env_kwargs=kwargs, progress=False,
                              reports=False, **config), agent=agent)
    return [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]


def _replayed(record) -> list[dict]:
    """The conversation the record describes, rebuilt: first, then each step's action and what it added."""
    messages = list(record["first"])
    for step in record["steps"]:
        if step.get("context") == "replaced":
            messages = list(step["added"])
            continue
        messages += [{"role": "assistant", "content": step["action"]}] + step["added"]
    return messages


def test_the_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())


@pytest.mark.parametrize("env_id", env_ids())
def test_bench_records_of_every_env_validate_and_replay_the_conversation(tmp_path, env_id, offline_kwargs, make_env):
    records = _bench(tmp_path, env_id, offline_kwargs(env_id))
    assert len(records) == 2
    for record in records:
        VALIDATOR.validate(record)
        assert record["source"] == "bench" and record["result"] is not None
        assert len(record["steps"]) == record["turns"]
        assert sum(s["reward"] for s in record["steps"]) == pytest.approx(record["return"])
        assert any(s["calls"] for s in record["steps"])  # the oracle calls tools
        # the stored steps rebuild the env's last observation exactly
        env = make_env(env_id)
        options = {"index": record["index"]} if record["dataset"] not in (None, "synthetic") else None
        obs, _ = env.reset(seed=record["seed"], options=options)
        assert record["first"] == list(obs)
        for step in record["steps"]:
            obs, *_ = env.step(step["action"])
        assert _replayed(record) == list(obs)


@pytest.mark.parametrize("env_id", env_ids())
def test_scripted_episode_records_of_every_env_validate(tmp_path, env_id, make_env):
    from toolgym.envs.cli import _record
    from toolgym.envs.result import EpisodeResult

    env = make_env(env_id)
    log = EpisodeLog()
    info = run_episode(env, SCRIPTED_AGENTS["oracle"](), seed=3, log=log)
    record = _record(env_id, "oracle", 0, 3, info, EpisodeResult.from_info(info), log)
    VALIDATOR.validate(record)
    assert record["source"] == "episodes" and record["success"] == 1.0


def test_toolgym_episodes_out_writes_records(tmp_path, capsys):
    from toolgym.cli import main

    out = tmp_path / "eps.jsonl"
    assert main(["episodes", "ToolMath-v0", "-n", "3", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2] and all(r["agent"] == "oracle" for r in records)
    for record in records:
        VALIDATOR.validate(record)
    assert f"toolgym view {out}" in capsys.readouterr().out


def test_a_windowed_context_is_stored_as_replaced(tmp_path):
    records = _bench(tmp_path, "MultiHopQA-v0", {"context": "window", "context_window": 1, "world": {"n_people": 60}})
    steps = [s for r in records for s in r["steps"]]
    assert any(s.get("context") == "replaced" for s in steps)
    for record in records:
        VALIDATOR.validate(record)
        assert "[" in json.dumps(_replayed(record))


class _FailsSecond(OracleAgent):
    """The oracle, but its second action of every episode comes back with an error."""

    def act(self, slots):
        out = []
        for action, slot in zip(super().act(slots), slots, strict=True):
            slot.state["turn"] = slot.state.get("turn", 0) + 1
            text = action if isinstance(action, str) else action.text
            out.append(Action(text, tokens_out=5, error="model crashed" if slot.state["turn"] == 2 else None))
        return out


def test_an_action_the_env_never_received_is_kept_with_its_error(tmp_path):
    records = _bench(tmp_path, "MultiHopQA-v0", {"world": {"n_people": 60}}, agent=_FailsSecond())
    for record in records:
        VALIDATOR.validate(record)
        assert record["status"] == "error" and record["result"] is None
        first, second = record["steps"]
        assert "stepped" not in first and first["calls"]
        assert second["stepped"] is False and second["error"] == "model crashed" and second["tokens_out"] == 5


def test_added_messages_skip_the_action_and_see_a_replaced_context():
    sys_, user = {"role": "system", "content": "s"}, {"role": "user", "content": "q"}
    act, tool = {"role": "assistant", "content": "a"}, {"role": "tool", "content": "r"}
    assert added_messages((sys_, user), (sys_, user, act, tool)) == ([tool], False)
    assert added_messages((sys_, user, act, tool), (sys_, user, act, {"role": "tool", "content": "..."})) == (
        [sys_, user, act, {"role": "tool", "content": "..."}], True)
    assert added_messages("s q", "s q a r") == ([{"role": "text", "content": " a r"}], False)


def test_the_module_examples_run():
    import doctest

    from toolgym.envs import record

    assert doctest.testmod(record).failed == 0


def test_best_and_spread_keeps_the_extremes():
    values = [0.3, -1.0, 2.0, 0.5, 0.0, 1.0]
    kept = best_and_spread(values, 3)
    assert len(kept) == 3 and 1 in kept and 2 in kept
    assert sorted(best_and_spread(values, 10)) == list(range(6))
    assert best_and_spread(values, 0) == [] and best_and_spread(values, 1) == [2]
