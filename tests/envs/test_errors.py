"""Suggestions and argument checks shared by every error message."""

from __future__ import annotations

import pytest

from toolgym.envs.errors import check_argument_types, check_choice, did_you_mean, suggest
from toolgym.envs.registration import env_ids


@pytest.mark.parametrize("name,expected", [
    ("MultiHopQA-v1", "MultiHopQA-v0"),   # a typo in the version
    ("hotpotqa-v0", "HotpotQA-v0"),       # case only
    ("WORDLE-V0", "Wordle-v0"),
    ("sql", "SQLQuery-v0"),               # the start of exactly one id
])
def test_env_id_suggestions(name, expected):
    assert suggest(name, env_ids()) == expected
    assert did_you_mean(name, env_ids()) == f" Did you mean {expected!r}?"


@pytest.mark.parametrize("name", ["NoSuch-v0", "xyz-v0", "Foo", "m", ""])
def test_no_suggestion_for_an_unrelated_name(name):
    # "NoSuch-v0" shares only "-v0" with "NQ-v0"; "m" starts several ids
    assert suggest(name, env_ids()) is None
    assert did_you_mean(name, env_ids()) == ""


def test_short_names_match_the_name_they_start():
    assert suggest("rnk", ["enabled", "r", "alpha", "dropout", "target_modules"]) == "r"
    assert suggest("herms", ["hermes", "tags"]) == "hermes"


def _budgets(count: int = 3, *, scale: float = 1.0, limit: int | None = None, timeout: float | None = None,
             flag: bool = False, name: str = "x"):
    pass


@pytest.mark.parametrize("kwargs,message", [
    ({"count": "abc"}, r"count must be an integer, got str 'abc' \(for example count=3\)\."),
    ({"count": 2.5}, "count must be an integer, got float 2.5"),
    ({"count": True}, "count must be an integer, got bool True"),
    ({"count": None}, "count must be an integer, got NoneType None"),
    ({"scale": "1e-3"}, "scale must be a number, got str '1e-3'"),
    ({"limit": [1]}, r"limit must be an integer \(or None\), got list \[1\]"),
    ({"timeout": "fast"}, r"timeout must be a number \(or None\), got str 'fast'\.$"),
    ({"flag": 1}, r"flag must be a boolean \(true or false\), got int 1"),
])
def test_wrong_numeric_types_are_named_with_the_value_and_the_default(kwargs, message):
    with pytest.raises(TypeError, match=message):
        check_argument_types(kwargs, _budgets)


def test_right_types_pass_and_other_annotations_are_not_checked():
    import numpy as np

    check_argument_types({"count": np.int64(2), "scale": 1, "limit": None, "timeout": np.float32(0.5),
                                    "flag": False, "name": 42, "unknown": "anything"}, _budgets)


@pytest.mark.parametrize("env_id", env_ids())
def test_every_env_checks_its_budgets_before_building_anything(env_id):
    import gymnasium as gym

    # HotpotQA-v0 and the other hub ids would try the network if the check came after loading
    with pytest.raises(TypeError, match="max_turns must be an integer, got str 'abc'"):
        gym.make(env_id, max_turns="abc")
    with pytest.raises(TypeError, match=r"max_tool_calls must be an integer \(or None\), got float 2\.5"):
        gym.make(env_id, max_tool_calls=2.5)


@pytest.mark.parametrize("env_id,kwargs,message", [
    ("MultiHopQA-v0", {"top_k": "3"}, "top_k must be an integer, got str '3'"),
    ("ToolMath-v0", {"tolerance": "tight"}, "tolerance must be a number, got str 'tight'"),
    ("SQLQuery-v0", {"max_seconds": "2s"}, "max_seconds must be a number, got str '2s'"),
    ("Wordle-v0", {"max_guesses": "six"}, "max_guesses must be an integer, got str 'six'"),
])
def test_task_kwargs_are_checked(env_id, kwargs, message):
    import gymnasium as gym

    with pytest.raises(TypeError, match=message):
        gym.make(env_id, **kwargs)


def test_aliases_are_suggested_as_the_name_they_stand_for():
    assert did_you_mean("dve", ["train", "validation", "test"], aliases={"dev": "validation"}) == \
        " Did you mean 'validation'?"
    assert did_you_mean("tran", ["train", "validation", "test"], aliases={"dev": "validation"}) == \
        " Did you mean 'train'?"


def test_check_choice_names_the_setting_the_value_and_the_closest_choice():
    check_choice("credit", "step", ("outcome", "step"))
    with pytest.raises(ValueError, match=r"^credit must be one of outcome, step; got 'stp'\. Did you mean 'step'\?$"):
        check_choice("credit", "stp", ("outcome", "step"))
    with pytest.raises(ValueError, match=r"got 'zzz'\.$"):
        check_choice("credit", "zzz", ("outcome", "step"))
