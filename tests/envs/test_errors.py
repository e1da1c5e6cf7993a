"""Suggestions and argument checks shared by every error message."""

from __future__ import annotations

import pytest

from toolgym.envs.errors import did_you_mean, suggest
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
