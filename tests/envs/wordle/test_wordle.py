"""Wordle-v0: the rules, the bundled words, dense rewards, and agents that win."""

import io
import json

import gymnasium as gym
import pytest

import toolgym  # noqa: F401 - registers the ids
from toolgym.cli import main
from toolgym.envs.wordle.game import consistent, feedback, load_words


def guess(word):
    return f'<tool_call>{{"name": "guess", "arguments": {{"word": "{word}"}}}}</tool_call>'


def test_bundled_word_lists():
    answers, allowed = load_words()
    assert len(answers) == 2500 and len(allowed) > 4000
    assert set(answers) <= allowed and len(set(answers)) == len(answers)
    assert all(len(w) == 5 and w.isalpha() and w.islower() for w in allowed)
    assert {"crane", "about", "world"} <= allowed


@pytest.mark.parametrize(("word", "secret", "pattern"), [
    ("crane", "crane", "GGGGG"),
    ("crane", "react", "YYG-Y"),
    ("speed", "abide", "--Y-Y"),  # one e in the secret: only the first e of the guess is marked
    ("geese", "eerie", "-GY-G"),  # greens take their letters before yellows do
    ("error", "robot", "-Y-G-"),  # one r in the secret
    ("llama", "hello", "YY---"),
])
def test_feedback_follows_the_game_rules_for_repeated_letters(word, secret, pattern):
    assert feedback(word, secret) == pattern


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
def test_oracle_wins_50_games_with_the_maximum_return(fmt):
    env = gym.make("Wordle-v0", format=fmt)
    for seed in range(50):
        env.reset(seed=seed)
        secret = env.unwrapped.game.secret
        _, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
        assert terminated and not truncated and info["result"]["success"] == 1.0 and info["guesses"] == 1
        assert reward == pytest.approx(1.0 + 0.1 * 5 + 0.05 * len(set(secret)))


def solver_action(env, fmt):
    """A feedback-using agent: guess the first word still consistent with every pattern seen."""
    answers, _ = load_words()
    candidates = consistent(answers, [tuple(h) for h in env.unwrapped.game.history])
    word = candidates[0]
    return f"<guess>{word}</guess>" if fmt == "tags" else guess(word)


@pytest.mark.slow
def test_an_agent_using_the_feedback_wins_and_never_beats_the_oracle():
    env = gym.make("Wordle-v0", format="tags")
    wins = 0
    for seed in range(30):
        env.reset(seed=seed)
        secret = env.unwrapped.game.secret
        total, terminated, truncated, turns = 0.0, False, False, 0
        while not (terminated or truncated):
            before = len(env.unwrapped.game.history)
            _, reward, terminated, truncated, info = env.step(solver_action(env, "tags"))
            assert len(env.unwrapped.game.history) == before + 1  # every action changes the state
            total += reward
            turns += 1
        wins += info["result"]["success"]
        assert total <= 1.0 + 0.5 + 0.05 * len(set(secret)) + 1e-9
        if info["result"]["success"]:
            assert total == pytest.approx(1.0 + 0.5 + 0.05 * len(set(secret)))  # every letter found once
    assert wins >= 25


def test_dense_rewards_invalid_and_repeated_guesses():
    env = gym.make("Wordle-v0")
    obs, info = env.reset(seed=0, options={"secret": "react"})
    assert obs[1]["content"].startswith("Wordle #")
    _, reward, _, _, info = env.step(guess("crane"))
    assert info["reward_terms"] == {"valid_call": 0.0, "green": 0.1, "letter": 0.2}
    _, reward, _, _, info = env.step(guess("trace"))  # new: c in its spot, the letter t
    assert info["reward_terms"] == {"valid_call": 0.0, "green": 0.1, "letter": 0.05}
    obs, reward, terminated, _, info = env.step(guess("xyzzy"))
    assert info["reward_terms"] == {"invalid_word": -0.05} and "not in the word list" in obs[-1]["content"]
    assert info["guesses"] == 2 and not terminated  # an invalid word uses a turn, not a guess
    _, reward, _, _, info = env.step(guess("cRaNe"))
    assert info["reward_terms"] == {"valid_call": 0.0, "repeat_guess": -0.05}
    obs, reward, _, _, info = env.step(guess("abc"))
    assert "not a 5-letter word" in obs[-1]["content"] and reward < 0
    obs, _, _, _, info = env.step(guess("plumb") + guess("react"))  # one guess per message
    assert "only 1 calls run per message" in obs[-1]["content"] and info["guesses"] == 4


def test_losing_ends_the_game_and_reveals_the_word():
    env = gym.make("Wordle-v0", max_guesses=2)
    env.reset(seed=0, options={"secret": "react"})
    env.step(guess("pilot"))
    obs, reward, terminated, truncated, info = env.step(guess("mound"))
    assert terminated and not truncated and info["result"]["success"] == 0.0 and info["result"]["gold"] == "react"


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="not in the list"):
        gym.make("Wordle-v0", words=["qqqqq"])
    env = gym.make("Wordle-v0", words=["crane", "slate"])
    assert {env.reset(seed=s)[0] and env.unwrapped.game.secret for s in range(10)} == {"crane", "slate"}
    with pytest.raises(ValueError, match="is not a listed"):
        env.reset(options={"secret": "zzzzz"})


def test_play_session(monkeypatch, capsys):
    env = gym.make("Wordle-v0", format="tags")
    env.reset(seed=4)
    actions = ["<guess>crane</guess>", env.unwrapped.oracle_action()]
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{a}\n\n" for a in actions)))
    assert main(["play", "Wordle-v0", "--seed", "4", "--kwargs", "format=tags"]) == 0
    out = capsys.readouterr().out
    assert "crane  " in out and "episode over (terminated)" in out
    assert json.loads(out[out.index("{", out.index("episode over")):])["result"]["success"] == 1.0


def test_docstring_examples():
    import doctest

    from toolgym.envs.wordle import env, game

    for module in (env, game):
        assert doctest.testmod(module).failed == 0
