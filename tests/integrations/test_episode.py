"""The episode bookkeeping every integration shares."""

from __future__ import annotations

import gymnasium as gym
import pytest

from toolgym.integrations.episode import Episode, check_append_only, instructions, make_env


def test_episode_keeps_return_terms_and_new_messages():
    episode = Episode(make_env("ToolMath-v0"))
    opening = episode.reset(seed=2, options={"index": None})  # a missing dataset column reads as None
    twin = gym.make("ToolMath-v0")
    assert opening == [dict(m) for m in twin.reset(seed=2)[0]]
    assert episode.task == opening[1]["content"] and instructions(episode.env) in opening[0]["content"]
    new = episode.step("no call")
    assert [m["role"] for m in new] == ["user"] and "no tool call found" in new[0]["content"]
    while not episode.done:
        episode.step(episode.base.oracle_action())
    assert episode.terminated and episode.how_it_ended().startswith("terminated")
    assert episode.episode_return == pytest.approx(sum(episode.terms.values()))
    assert episode.terms["format"] == pytest.approx(-0.1) and set(episode.terms) <= set(episode.term_names)
    with pytest.raises(RuntimeError, match="has ended"):
        episode.step("again")
    episode.reset(seed=3)
    assert episode.actions == [] and episode.terms == {} and not episode.done


def test_windowed_contexts_and_unknown_ids_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="context='full'"):
        check_append_only(make_env("MultiHopQA-v0", context="window"), "X")
    with pytest.raises(ValueError, match="Did you mean 'ToolMath-v0'"):
        make_env("ToolMaths-v0")
