"""A tiny env following the toolgym env contract, so the trainer is tested without the real envs.

"What is the code of KEY?" -- a `search` tool returns "KEY has code VALUE" (process reward
`evidence` the first time), an `answer` call ends the episode with reward `answer` (1 if right).
Hermes format: <tool_call>{"name": ..., "arguments": {...}}</tool_call>.
"""

from __future__ import annotations

import json
import re

import gymnasium as gym

KEYS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
VALUES = ["red", "green", "blue", "amber", "violet", "silver", "coral", "olive"]
CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
TOOLS = [
    {"type": "function", "function": {"name": "search", "description": "Look a key up.",
                                      "parameters": {"type": "object", "properties": {"query": {"type": "string"}},
                                                     "required": ["query"]}}},
    {"type": "function", "function": {"name": "answer", "description": "Give the final answer.",
                                      "parameters": {"type": "object", "properties": {"answer": {"type": "string"}},
                                                     "required": ["answer"]}}},
]


class FakeQAEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, max_turns: int = 3, context: str = "full", single_turn: bool = False):
        self.max_turns = max_turns
        self.context_append_only = context == "full"
        self.single_turn = single_turn
        self.chat_tools = TOOLS
        self.observation_space = gym.spaces.Discrete(1)  # not checked here
        self.action_space = gym.spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        k = int(self.np_random.integers(len(KEYS)))
        self.key, self.value = KEYS[k], VALUES[k]
        self.turn, self.calls, self.found = 0, 0, False
        self.messages = [{"role": "system", "content": "Answer with the tools."},
                         {"role": "user", "content": f"What is the code of {self.key}?"}]
        return self._obs(), {"turn": 0, "tool_calls": 0, "reward_terms": {}, "parse_error": None,
                             "tool_error": None, "question_id": self.key, "found_supporting": []}

    def _obs(self):
        msgs = [dict(m) for m in self.messages]
        if not self.context_append_only and len(msgs) > 4:  # window: system, user, last exchange
            msgs = msgs[:2] + msgs[-2:]
        return tuple(msgs)

    def step(self, action: str):
        self.turn += 1
        self.messages.append({"role": "assistant", "content": action})
        # a small length penalty: sampled texts differ in length, so a random policy still sees reward variance
        terms, parse_error, done, info_end = {"brevity": -len(action) / 1000}, None, False, {}
        calls = CALL.findall(action)
        if not calls:
            parse_error = "no <tool_call> found"
            terms["format"] = -0.1
            self.messages.append({"role": "user", "content": "Error: no tool call found. Call search or answer."})
        for raw in calls:
            self.calls += 1
            try:
                call = json.loads(raw)
                name, args = call["name"], call["arguments"]
            except Exception as e:  # noqa: BLE001 - any malformed call is a parse error
                parse_error = f"bad call: {e}"
                terms["format"] = terms.get("format", 0.0) - 0.1
                self.messages.append({"role": "tool", "content": f"Error: {parse_error}"})
                continue
            if name == "search":
                q = str(args.get("query", ""))
                hit = self.key in q
                if hit and not self.found:
                    terms["evidence"] = terms.get("evidence", 0.0) + 0.2
                    self.found = True
                self.messages.append({"role": "tool", "content": f"{self.key} has code {self.value}" if hit
                                      else "no result"})
            elif name == "answer":
                given = str(args.get("answer", ""))
                em = float(given.strip() == self.value)
                terms["answer"] = em
                info_end = {"answer": given, "gold_answer": self.value, "em": em, "f1": em}
                done = True
                break
            else:
                self.messages.append({"role": "tool", "content": f"Error: unknown tool {name}"})
        truncated = (not done) and (self.turn >= self.max_turns or self.single_turn)
        if truncated and not info_end:
            info_end = {"answer": None, "gold_answer": self.value, "em": 0.0, "f1": 0.0}
        info = {"turn": self.turn, "tool_calls": self.calls, "reward_terms": terms, "parse_error": parse_error,
                "tool_error": None, "question_id": self.key, "found_supporting": [self.key] if self.found else [],
                **info_end}
        return self._obs(), float(sum(terms.values())), done, truncated, info


def expert_turns(key: str, value: str) -> list[str]:
    return [f'<tool_call>{{"name": "search", "arguments": {{"query": "{key}"}}}}</tool_call>',
            f'<tool_call>{{"name": "answer", "arguments": {{"answer": "{value}"}}}}</tool_call>']


def corpus() -> list[str]:
    texts = []
    for k, v in zip(KEYS, VALUES, strict=True):
        texts += [f"What is the code of {k}?", f"{k} has code {v}", *expert_turns(k, v)]
    return texts * 20


def register_fakes():
    """Register FakeQA-v0 (multi-turn), FakeQAWindow-v0 (multi-turn, windowed context: not
    append-only) and FakeQA1-v0 (single turn, no tools in the prompt)."""
    if "FakeQA-v0" not in gym.registry:
        gym.register("FakeQA-v0", entry_point=FakeQAEnv, disable_env_checker=True)
        gym.register("FakeQAWindow-v0", entry_point=FakeQAEnv, kwargs={"context": "window"},
                     disable_env_checker=True)
        gym.register("FakeQA1-v0", entry_point=SingleTurnQAEnv, disable_env_checker=True)


class SingleTurnQAEnv(FakeQAEnv):
    """One step, tools described nowhere (so TRL's own prompt rendering is the same as ours)."""

    def __init__(self):
        super().__init__(max_turns=1, single_turn=True)
        self.chat_tools = None


def grpo_args(tmp_path, **over):
    from trl import GRPOConfig

    kw = dict(output_dir=str(tmp_path), per_device_train_batch_size=9, num_generations=3, max_completion_length=80,
              max_steps=2, learning_rate=1e-2, logging_steps=1, save_strategy="no", report_to="none", use_cpu=True,
              bf16=False, seed=0, beta=0.0, disable_tqdm=True)
    kw.update(over)
    return GRPOConfig(**kw)
