"""A tiny toolgym env, so the trainer is tested without the real envs: a ``ToolEnv`` subclass, so
it keeps the env contract (formats, budgets, reward terms, the episode result) by construction.

"What is the code of KEY?" -- a `search` tool returns "KEY has code VALUE" (process reward
`evidence` the first time the key is searched), an `answer` call ends the episode with reward
`answer` (1 if right), and every message costs `brevity` (its length / 1000: a random policy's
samples differ in length, so they still differ in reward). Hermes format.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym

from toolgym.envs.formats import HermesFormat
from toolgym.envs.result import EpisodeResult
from toolgym.envs.tool import AnswerTool, Tool, ToolResult, string_arguments
from toolgym.envs.tool_env import ToolEnv

KEYS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
VALUES = ["red", "green", "blue", "amber", "violet", "silver", "coral", "olive"]


class Lookup(Tool):
    name, description = "search", "Look a key up."
    parameters = string_arguments(query="The key to look up.")
    timeout = None

    def run(self, query: str) -> ToolResult:
        key = next((k for k in KEYS if k in query), None)
        return ToolResult(f"{key} has code {VALUES[KEYS.index(key)]}" if key else "no result")


@dataclass(frozen=True)
class BriefHermes(HermesFormat):
    """Hermes calls with a one-line protocol: the tiny model's prompts and error replies stay short."""

    def protocol(self, tools):
        return "Call search or answer."


class FakeQAEnv(ToolEnv):
    default_reward_weights = {"format": -0.1, "valid_call": 0.0, "evidence": 0.2, "answer": 1.0, "brevity": -0.001}

    def __init__(self, max_turns: int = 3, context: str = "full", **options):
        super().__init__(format=BriefHermes(), max_turns=max_turns, context=context, context_window=1, **options)

    def _make_tools(self):
        return (Lookup(), AnswerTool("Give the final answer."))

    def _instructions(self):
        return "Answer with the tools."

    def _new_task(self, options):
        k = int(self.np_random.integers(len(KEYS)))
        self.key, self.value = KEYS[k], VALUES[k]
        self.found, self.answer = False, None
        return f"What is the code of {self.key}?"

    def _on_message(self, text, terms):
        terms.add("brevity", len(text))

    def _on_result(self, call, result, terms):
        if not result.ok:
            return False
        if call.name == "answer":
            self.answer = result.metadata["answer"]
            terms.add("answer", float(self.answer.strip() == self.value))
            return True
        if self.key in call.arguments["query"] and not self.found:
            self.found = True
            terms.add("evidence")
        return False

    def oracle_action(self):
        return expert_turns(self.key, self.value)[int(self.found)]

    def _task_info(self):
        return {"question_id": self.key, "found_supporting": [self.key] if self.found else []}

    def _episode_result(self):
        right = self.answer is not None and self.answer.strip() == self.value
        return EpisodeResult(success=right, score=float(right), answer=self.answer, gold=self.value)

    def _observation(self):
        """``context="window"`` here shows the system message, the task and the last exchange only."""
        obs, over = super()._observation()
        if self.context == "window" and len(obs) > 4:
            obs = obs[:2] + obs[-2:]
        return obs, over

    # The conversation itself, for tests that inspect or tamper with it.
    @property
    def messages(self):
        return self._messages

    def _obs(self):
        return self._observation()[0]


def expert_turns(key: str, value: str) -> list[str]:
    return [f'<tool_call>{{"name": "search", "arguments": {{"query": "{key}"}}}}</tool_call>',
            f'<tool_call>{{"name": "answer", "arguments": {{"answer": "{value}"}}}}</tool_call>']


def corpus() -> list[str]:
    """The tiny tokenizer's training texts: the questions, the expert's turns and the env's replies."""
    texts = [FakeQAEnv().system_prompt, "Error: no tool call found in your message. Call search or answer."]
    for k, v in zip(KEYS, VALUES, strict=True):
        texts += [f"What is the code of {k}?", f"{k} has code {v}", *expert_turns(k, v)]
    return texts * 20


def register_fakes():
    """Register FakeQA-v0 (multi-turn), FakeQAWindow-v0 (multi-turn, windowed context: not
    append-only) and FakeQA1-v0 (single turn, no tool schemas in the prompt)."""
    if "FakeQA-v0" not in gym.registry:
        gym.register("FakeQA-v0", entry_point=FakeQAEnv, disable_env_checker=True)
        gym.register("FakeQAWindow-v0", entry_point=FakeQAEnv, kwargs={"context": "window"},
                     disable_env_checker=True)
        gym.register("FakeQA1-v0", entry_point=SingleTurnQAEnv, disable_env_checker=True)


class SingleTurnQAEnv(FakeQAEnv):
    """One step, no tool schemas for the chat template (the system prompt describes the tools), so
    TRL's own prompt rendering is the same as ours."""

    chat_tools = None

    def __init__(self):
        super().__init__(max_turns=1)

    def oracle_action(self):
        return expert_turns(self.key, self.value)[1]  # one turn: answer at once


def grpo_args(tmp_path, **over):
    from trl import GRPOConfig

    kw = dict(output_dir=str(tmp_path), per_device_train_batch_size=9, num_generations=3, max_completion_length=80,
              max_steps=2, learning_rate=1e-2, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
              bf16=False, seed=0, beta=0.0, disable_tqdm=True)
    kw.update(over)
    return GRPOConfig(**kw)
