"""check_tool_env: every registered id keeps the contract, and each way of breaking it is caught."""

from __future__ import annotations

import gymnasium as gym
import pytest

from toolgym.envs.checker import ToolEnvContractError, check_tool_env
from toolgym.envs.registration import env_ids
from toolgym.envs.result import EpisodeResult
from toolgym.envs.tool import AnswerTool, Tool, ToolResult, string_arguments
from toolgym.envs.tool_env import ToolEnv


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
@pytest.mark.parametrize("env_id", env_ids())
def test_every_registered_id_keeps_the_contract(env_id, fmt, make_env):
    check_tool_env(make_env(env_id, format=fmt))


class Echo(Tool):
    name, description = "echo", "Repeat a word."
    parameters = string_arguments(word="The word.")
    timeout = None

    def run(self, word):
        return ToolResult(word)


class WordEnv(ToolEnv):
    """A valid minimal task: echo the secret word, then answer it."""

    default_reward_weights = {**ToolEnv.default_reward_weights, "answer": 1.0, "echoed": 0.1}

    def _make_tools(self):
        return (Echo(), AnswerTool())

    def _instructions(self):
        return "Find the word."

    def _new_task(self, options):
        self.secret = ["red", "blue", "green"][int(self.np_random.integers(3))]
        self.echoed, self.answer = False, None
        return f"The word is {self.secret}."

    def _on_result(self, call, result, terms):
        if call.name == "answer" and result.ok:
            self.answer = result.metadata["answer"]
            terms.add("answer", float(self.answer == self.secret))
            return True
        if call.name == "echo" and result.ok and not self.echoed:
            self.echoed = True
            terms.add("echoed")
        return False

    def oracle_action(self):
        return self.call("answer", answer=self.secret) if self.echoed else self.call("echo", word=self.secret)

    def _episode_result(self):
        right = self.answer == self.secret
        return EpisodeResult(success=right, score=float(right), answer=self.answer, gold=self.secret)


def test_a_valid_minimal_env_passes():
    check_tool_env(WordEnv())
    check_tool_env(WordEnv(format="tags", max_turns=3))


class NoResultInInfo(WordEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        info.pop("result", None)
        return obs, reward, terminated, truncated, info


class ResultAsDict(WordEnv):
    def _episode_result(self):
        return {"success": False, "score": 0.0}


class ScoreOutOfRange(WordEnv):
    def _episode_result(self):
        return EpisodeResult(success=False, score=2.0)


class IntReward(WordEnv):
    def step(self, action):
        obs, reward, *rest = super().step(action)
        return obs, round(reward), *rest


class NanReward(WordEnv):
    def step(self, action):
        obs, reward, *rest = super().step(action)
        return obs, float("nan"), *rest


class UnnamedBonus(WordEnv):
    def step(self, action):
        obs, reward, *rest = super().step(action)
        return obs, reward + 0.5, *rest


class TermWithoutWeight(WordEnv):
    def _on_result(self, call, result, terms):
        terms.add("bonus")
        return super()._on_result(call, result, terms)


class BothEnds(WordEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, terminated or truncated, info


class TextObservation(WordEnv):
    def step(self, action):
        obs, *rest = super().step(action)
        return "\n".join(m["content"] for m in obs), *rest


class UnknownRole(WordEnv):
    def step(self, action):
        obs, *rest = super().step(action)
        return obs[:-1] + ({"role": "environment", "content": obs[-1]["content"]},), *rest


class SetInInfo(WordEnv):
    def _task_info(self):
        return {"seen": {self.secret}}


class ResultEveryStep(WordEnv):
    def _task_info(self):
        return {"result": {"success": False, "score": 0.0}}


class WrongOracle(WordEnv):
    def oracle_action(self):
        return self.call("answer", answer="purple")


class RaisesOnEmptyMessage(WordEnv):
    def _on_message(self, text, terms):
        text.split()[0]


class GarbageSucceeds(WordEnv):
    def _episode_result(self):
        return EpisodeResult(success=True, score=1.0)


class SilentOnBadCalls(WordEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "parse_error": None, "tool_error": None}


class NeverEnds(WordEnv):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, False, False, {k: v for k, v in info.items() if k != "result"}


class NotSeeded(WordEnv):
    """Draws the task from a counter, not from ``self.np_random``: a seed does not fix it."""

    def _new_task(self, options):
        super()._new_task(options)
        self.resets = getattr(self, "resets", 0) + 1
        self.secret = ["red", "blue", "green"][self.resets % 3]
        return f"The word is {self.secret}."


BROKEN = {
    "no result in the final info": (NoResultInInfo, "the episode ended but info has no 'result'"),
    "hook returns a dict": (ResultAsDict, r"_episode_result\(\) must return an EpisodeResult, got dict"),
    "score out of [0, 1]": (ScoreOutOfRange, r"score must be in \[0, 1\], got 2.0"),
    "int reward": (IntReward, "the reward is int"),
    "nan reward": (NanReward, "the reward is float nan"),
    "reward outside the named terms": (UnnamedBonus, "every part of the reward must be a named term"),
    "term without a weight": (TermWithoutWeight, "reward term 'bonus' has no weight"),
    "terminated and truncated": (BothEnds, "terminated and truncated are both True"),
    "observation is text": (TextObservation, "the observation is str"),
    "unknown role": (UnknownRole, "observation message 3 is .*'environment'"),
    "info not JSON": (SetInInfo, "check_env failed|info is not JSON-serialisable"),
    "result before the end": (ResultEveryStep, "before the episode ended"),
    "oracle fails": (WrongOracle, "the oracle must solve the task"),
    "malformed action raises": (RaisesOnEmptyMessage, r"\(action: empty\).*raised IndexError"),
    "malformed episode succeeds": (GarbageSucceeds, "malformed actions ended as a success"),
    "malformed action not reported": (SilentOnBadCalls, "parse_error=None and tool_error=None"),
    "never ends": (NeverEnds, "did not end within max_turns=8"),
    "not seeded": (NotSeeded, "check_env failed.*[Dd]eterministic"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_checker_catches_a_broken_env(case):
    cls, message = BROKEN[case]
    with pytest.raises(ToolEnvContractError, match=message):
        check_tool_env(cls(), skip_gymnasium_check=case not in ("info not JSON", "not seeded"))


def test_the_checker_names_what_it_checks():
    with pytest.raises(ToolEnvContractError, match="checks ToolEnv subclasses; got CartPoleEnv"):
        check_tool_env(gym.make("CartPole-v1"))
    with pytest.raises(TypeError, match="defines _final_info"):
        type("Old", (WordEnv,), {"_final_info": lambda self: {}})
