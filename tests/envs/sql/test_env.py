"""SQLQuery-v0: the oracle solves every question; answers and process terms are scored as documented."""

import io
import json

import gymnasium as gym
import numpy as np
import pytest

import toolgym  # noqa: F401 - registers the ids
from toolgym.cli import main
from toolgym.envs.sql.database import ReadOnlyDatabase, database_path
from toolgym.envs.sql.questions import TEMPLATES, check_answer, generate_question


def hermes(name, **arguments):
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
def test_oracle_solves_50_questions_with_the_maximum_return(fmt):
    env = gym.make("SQLQuery-v0", format=fmt)
    for seed in range(50):
        env.reset(seed=seed)
        question = env.unwrapped.question
        total, terminated, truncated = 0.0, False, False
        while not (terminated or truncated):
            _, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
            total += reward
            assert all(v >= 0 for v in info["reward_terms"].values())
        assert terminated and not truncated and info["result"]["success"] and info["result"]["score"] == 1.0
        assert sorted(info["tables_touched"]) == sorted(question.tables)
        assert total == pytest.approx(1.0 + 0.05 * len(question.tables) + 0.02 * 2)


def test_every_template_yields_an_unambiguous_answer():
    db = ReadOnlyDatabase(database_path())
    rng = np.random.default_rng(0)
    for name in TEMPLATES:
        question = generate_question(rng, db, (name,))
        assert question.template == name and question.answer and question.tables
        assert db.query(question.gold_sql).rows[0][0] == question.answer[0]


@pytest.mark.parametrize(("given", "gold", "ok"), [
    ("42", (42,), True), ("42.0", (42,), True), ("$1,234.50", (1234.5,), True), ("1234.5000001", (1234.5,), True),
    ("1234.51", (1234.5,), False), ("forty-two", (42,), False),
    ("gdansk", ("Gdansk",), True), ("  'Gdansk'. ", ("Gdansk",), True), ("Krakow", ("Gdansk",), False),
    ("Nordic Kettle, Pro Robot, Eco Kite", ("Eco Kite", "Nordic Kettle", "Pro Robot"), True),
    ("Nordic Kettle\nPro Robot and Eco Kite", ("Eco Kite", "Nordic Kettle", "Pro Robot"), True),
    ("Nordic Kettle, Pro Robot", ("Eco Kite", "Nordic Kettle", "Pro Robot"), False),
    ("Nordic Kettle, Nordic Kettle, Pro Robot", ("Eco Kite", "Nordic Kettle", "Pro Robot"), False),
])
def test_answer_check(given, gold, ok):
    assert check_answer(given, gold) is ok


def test_process_terms_for_right_tables_and_errors():
    env = gym.make("SQLQuery-v0")
    env.reset(seed=0)
    question = env.unwrapped.question
    obs, reward, _, _, info = env.step(hermes("list_tables"))
    assert info["reward_terms"] == {"valid_call": 0.02} and "orders (4000 rows)" in obs[-1]["content"]
    _, reward, _, _, info = env.step(hermes("sql", query="UPDATE orders SET status = 'x'"))
    assert info["reward_terms"] == {"sql_error": -0.05} and "UPDATE statements are not allowed" in info["tool_error"]
    table = question.tables[0]
    _, reward, _, _, info = env.step(hermes("sql", query=f"SELECT * FROM {table} LIMIT 1"))
    assert info["reward_terms"] == {"valid_call": 0.02, "table": 0.05} and info["tables_touched"] == [table]
    _, reward, _, _, info = env.step(hermes("sql", query=f"SELECT COUNT(*) FROM {table}"))
    assert info["reward_terms"] == {"valid_call": 0.02}  # a table counts once
    _, reward, terminated, _, info = env.step(hermes("answer", answer="not it"))
    assert terminated and not info["result"]["success"] and info["result"]["extras"]["sql"]["gold_sql"] == question.gold_sql


def test_unknown_settings_are_named():
    with pytest.raises(ValueError, match="Did you mean 'n_orders'"):
        gym.make("SQLQuery-v0", database={"n_order": 10})
    with pytest.raises(ValueError, match="Did you mean 'revenue'"):
        gym.make("SQLQuery-v0", templates=["revenu"])


def test_play_session(monkeypatch, capsys):
    env = gym.make("SQLQuery-v0", format="tags")
    env.reset(seed=5)
    actions = ["<list_tables></list_tables>", "<describe>orders</describe>"]
    for action in actions:
        env.step(action)
    while True:
        actions.append(env.unwrapped.oracle_action())
        if env.step(actions[-1])[2]:
            break
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{a}\n\n" for a in actions)))
    assert main(["play", "SQLQuery-v0", "--seed", "5", "--kwargs", "format=tags"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE orders" in out and "episode over (terminated)" in out
    assert json.loads(out[out.index("{", out.index("episode over")):])["result"]["success"] is True


def test_docstring_examples():
    import doctest

    from toolgym.envs.sql import env, questions

    for module in (env, questions):
        assert doctest.testmod(module).failed == 0


def test_numeric_answer_with_thousands_of_digits_is_wrong_not_a_crash():
    env = gym.make("SQLQuery-v0", format="tags", max_action_chars=20_000)
    env.reset(seed=1)
    gold = env.unwrapped.question.answer
    assert len(gold) == 1 and isinstance(gold[0], (int, float))  # the numeric case Fraction() raised on
    obs, reward, terminated, truncated, info = env.step("<answer>" + "9" * 5000 + "</answer>")
    assert terminated and info["result"]["success"] is False and info["reward_terms"]["answer"] == 0.0
