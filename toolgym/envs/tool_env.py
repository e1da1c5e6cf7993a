"""ToolEnv: the Gymnasium environment of an agent that acts by writing text that calls tools.

One step is one assistant message. The env parses it with an action format, runs the tools it
calls, lets the task interpret each result (state, reward terms, the end of the episode), and
returns the conversation the agent should see next. Tools report what happened; the env decides
what it means.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym

from toolgym.envs.errors import check_non_negative, unknown_name_error
from toolgym.envs.formats import ActionFormat, ParsedAction, ToolCall, get_format
from toolgym.envs.spaces import Messages, UnicodeText
from toolgym.envs.tool import Tool, ToolResult

CONTEXT_MODES = ("full", "window")
ELIDED = "[earlier tool result elided]"


def cut(text: str, limit: int | None, what: str = "characters") -> str:
    """``text`` cut to ``limit`` characters, with a visible marker saying how much was cut."""
    if limit is None or len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... cut: {len(text) - limit} more {what}]"


def render_messages(messages: Sequence[Mapping[str, str]]) -> str:
    """A conversation as one plain string, for text-only agents, ``render()`` and logs."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


class RewardTerms:
    """The raw reward terms of one step; the env weights them and sums them into the reward."""

    def __init__(self) -> None:
        self.raw: dict[str, float] = {}

    def add(self, name: str, value: float = 1.0) -> None:
        self.raw[name] = self.raw.get(name, 0.0) + float(value)


class ToolEnv(gym.Env[tuple, str]):
    """Base class of the toolgym environments; subclasses define the task.

    A subclass sets ``default_reward_weights`` and implements the task hooks: ``_make_tools``,
    ``_instructions``, ``_new_task``, ``_on_result``, and optionally ``_task_info`` and
    ``_final_info``. Everything else (parsing, budgets, context, rewards, info, the spaces) is here.

    Arguments (shared by every toolgym env):
        format: ``"hermes"`` (Qwen function calling) or ``"tags"`` (Search-R1).
        max_turns: assistant messages per episode before ``truncated``.
        max_tool_calls: tool calls per episode before ``truncated`` (calls to ``free_tools``,
            such as ``answer``, do not count). None: ``2 * max_turns``.
        max_calls_per_turn: calls run from one message; further calls are skipped with a note.
        max_tool_result_chars: a tool result longer than this is cut, with a marker.
        max_action_chars: an assistant message longer than this is cut, with a marker.
        max_context_chars: characters of the whole conversation; beyond it the episode is
            ``truncated`` and the last messages are cut to fit.
        context: ``"full"`` (the whole history) or ``"window"`` (only the last ``context_window``
            tool results are shown in full; older ones are elided).
        context_window: tool results kept in full with ``context="window"``.
        reward_weights: overrides of ``default_reward_weights`` by term name.
        tool_timeout: seconds a tool call may take (None: the tool's own default).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"], "render_fps": 4}
    #: Raw term -> weight; the step reward is the weighted sum. Subclasses extend this.
    default_reward_weights: ClassVar[dict[str, float]] = {"format": -0.1, "valid_call": 0.02}
    #: Tools whose calls do not count against ``max_tool_calls`` (they end the episode).
    free_tools: ClassVar[tuple[str, ...]] = ("answer",)

    def __init__(
        self,
        *,
        format: str | ActionFormat = "hermes",
        max_turns: int = 8,
        max_tool_calls: int | None = None,
        max_calls_per_turn: int = 4,
        max_tool_result_chars: int | None = 3000,
        max_action_chars: int = 8192,
        max_context_chars: int = 60000,
        context: str = "full",
        context_window: int = 2,
        reward_weights: Mapping[str, float] | None = None,
        tool_timeout: float | None = None,
        render_mode: str | None = None,
    ):
        check_non_negative(
            max_turns=max_turns, max_tool_calls=max_tool_calls, max_calls_per_turn=max_calls_per_turn,
            max_tool_result_chars=max_tool_result_chars, max_action_chars=max_action_chars,
            max_context_chars=max_context_chars, context_window=context_window, tool_timeout=tool_timeout,
        )
        if max_turns < 1 or max_calls_per_turn < 1:
            raise ValueError(f"max_turns and max_calls_per_turn must be >= 1, got {max_turns} and {max_calls_per_turn}.")
        if context not in CONTEXT_MODES:
            raise unknown_name_error("context mode", context, CONTEXT_MODES)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise unknown_name_error("render_mode", render_mode, self.metadata["render_modes"])
        self.format = get_format(format)
        self.max_turns = max_turns
        self.max_tool_calls = 2 * max_turns if max_tool_calls is None else max_tool_calls
        self.max_calls_per_turn = max_calls_per_turn
        self.max_tool_result_chars = max_tool_result_chars
        self.max_action_chars = max_action_chars
        self.max_context_chars = max_context_chars
        self.context = context
        self.context_window = context_window
        self.render_mode = render_mode
        self.reward_weights = dict(self.default_reward_weights)
        for name, weight in (reward_weights or {}).items():
            if name not in self.default_reward_weights:
                raise unknown_name_error("reward term", name, self.default_reward_weights)
            self.reward_weights[name] = float(weight)

        self.tools: tuple[Tool, ...] = tuple(self._make_tools())
        if tool_timeout is not None:
            for tool in self.tools:
                tool.timeout = tool_timeout
        self._tools_by_name = {tool.name: tool for tool in self.tools}

        # One message per turn, its results (one per call) and a feedback note; plus system and task.
        max_messages = 2 + max_turns * (max_calls_per_turn + 2)
        self.observation_space = Messages(max_messages=max_messages, max_chars=max_context_chars)
        self.action_space = UnicodeText(max_length=2**31 - 1)

        self._messages: list[dict[str, str]] = []
        self._result_indices: list[int] = []
        self.turn = 0
        self.tool_calls = 0
        self._terminated = self._truncated = False

    # -- what a task defines ------------------------------------------------------------------
    def _make_tools(self) -> Sequence[Tool]:
        raise NotImplementedError

    def _instructions(self) -> str:
        """The task's part of the system prompt."""
        raise NotImplementedError

    def _new_task(self, options: Mapping[str, Any]) -> str:
        """Start a task (drawing only from ``self.np_random``); return the first user message."""
        raise NotImplementedError

    def _on_result(self, call: ToolCall, result: ToolResult, terms: RewardTerms) -> bool:
        """Interpret one tool result: update the task, add reward terms; True ends the episode."""
        raise NotImplementedError

    def _task_info(self) -> dict[str, Any]:
        return {}

    def call(self, tool: str, **arguments: Any) -> str:
        """Action text calling ``tool`` in this env's format: ``env.call("search", query="Paris")``."""
        return self.format.write_call(tool, arguments)

    def oracle_action(self) -> str:
        """What an agent that knows the solution writes now: calibrates rewards and benchmarks
        (the oracle must reach the maximum score) and writes the trainer's warm-start data."""
        raise NotImplementedError(f"{type(self).__name__} has no oracle.")

    def _final_info(self) -> dict[str, Any]:
        return {}

    # -- the Gymnasium API --------------------------------------------------------------------
    @property
    def chat_tools(self) -> list[dict[str, Any]] | None:
        """Tool schemas for ``tokenizer.apply_chat_template(obs, tools=...)`` (None for ``tags``)."""
        return self.format.chat_tools(self.tools)

    @property
    def context_append_only(self) -> bool:
        """True when each observation extends the previous one (the trainer relies on it)."""
        return self.context == "full"

    @functools.cached_property
    def system_prompt(self) -> str:
        """The task's instructions and the format's protocol; fixed for the env's lifetime."""
        return f"{self._instructions()}\n\n{self.format.protocol(self.tools)}"

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.turn = 0
        self.tool_calls = 0
        self._terminated = self._truncated = False
        task = self._new_task(options or {})
        self._messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": task}]
        self._result_indices = []
        observation, _ = self._observation()
        if self.render_mode == "human":
            self.render()
        return observation, self._info({})

    def step(self, action: str):
        terms = RewardTerms()
        errors: dict[str, str | None] = {"parse_error": None, "tool_error": None}
        if self._terminated or self._truncated:
            terms.add("format")
            errors["parse_error"] = "the episode has ended; call reset() to start a new one"
            observation, _ = self._observation()
            return observation, self._weigh(terms), self._terminated, self._truncated, self._info(terms.raw, errors)

        if not isinstance(action, str):
            errors["parse_error"] = f"the action must be a str, got {type(action).__name__}"
            action = ""
        text = cut(action, self.max_action_chars)
        self._messages.append({"role": "assistant", "content": text})
        self.turn += 1

        parsed = self.format.parse(text, self.tools)
        results, feedback, ended, out_of_calls = self._run_calls(parsed, terms, errors)
        if parsed.errors:
            terms.add("format", len(parsed.errors))
            errors["parse_error"] = "; ".join(parsed.errors)
            feedback.insert(0, "Error: " + errors["parse_error"])
        if not parsed.attempted and errors["parse_error"] is None:
            terms.add("format")
            errors["parse_error"] = "no tool call found in the message"
            feedback.append(f"Error: no tool call found in your message. {self.format.protocol(self.tools)}")

        # Results are shown even when the episode ends: the last observation tells a person (or
        # a log) what the final call did, e.g. the word a lost game was looking for.
        start = len(self._messages)
        new = self.format.result_messages(results, feedback)
        self._messages.extend(new)
        self._result_indices.extend(range(start, start + len(new)))

        self._terminated = ended
        budget = None
        if not ended:
            # A spent call budget ends the episode only when the agent asks for one more call:
            # until then it may still answer.
            if out_of_calls:
                budget = "tool_calls"
            elif self.turn >= self.max_turns:
                budget = "turns"
        observation, over_context = self._observation()
        if over_context and not ended:
            budget = budget or "context"
        self._truncated = budget is not None
        info = self._info(terms.raw, errors, truncated_by=budget)
        if self._terminated or self._truncated:
            info.update(self._final_info())
        if self.render_mode == "human":
            self.render()
        return observation, self._weigh(terms), self._terminated, self._truncated, info

    def render(self) -> str | None:
        """``"ansi"``: the conversation so far as one string. ``"human"``: print the messages not
        printed yet (``reset`` and ``step`` call this, as Gymnasium's human mode does) and return None."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi' to gym.make.")
            return None
        if self.render_mode == "ansi":
            return render_messages(self._messages)
        # reset() starts a new message list: what was printed of the previous one does not count
        printed = self._printed if getattr(self, "_printed_of", None) is self._messages else 0
        if len(self._messages) > printed:
            print(render_messages(self._messages[printed:]) + "\n", flush=True)
        self._printed, self._printed_of = len(self._messages), self._messages
        return None

    # -- the machinery ------------------------------------------------------------------------
    def _run_calls(self, parsed: ParsedAction, terms: RewardTerms, errors: dict[str, str | None]):
        results: list[str] = []
        feedback: list[str] = []
        ended = out_of_calls = False
        for number, call in enumerate(parsed.calls):
            if number >= self.max_calls_per_turn:
                feedback.append(f"Note: only {self.max_calls_per_turn} calls run per message; the rest were skipped.")
                break
            tool = self._tools_by_name.get(call.name)
            if tool is None:
                error = str(unknown_name_error("tool", call.name, self._tools_by_name))
                result = ToolResult.failure(error, invalid_arguments=True)
            elif tool.name not in self.free_tools and self.tool_calls >= self.max_tool_calls:
                feedback.append(f"Note: the budget of {self.max_tool_calls} tool calls is spent; {call.name!r} was not run.")
                out_of_calls = True
                continue
            else:
                result = tool(call.arguments)
                if tool.name not in self.free_tools:
                    self.tool_calls += 1
            if not result.ok:
                errors["tool_error"] = result.error
                if result.metadata.get("invalid_arguments"):
                    terms.add("format")
            else:
                terms.add("valid_call")
            results.append(cut(result.content, self.max_tool_result_chars))
            if tool is not None and self._on_result(call, result, terms):
                ended = True
                break
        return results, feedback, ended, out_of_calls

    def _observation(self) -> tuple[tuple[dict[str, str], ...], bool]:
        """A fresh copy of the context the agent sees, and whether it had to be cut to fit."""
        keep = set(self._result_indices[-self.context_window :]) if self.context == "window" else None
        elided = set(self._result_indices) - keep if keep is not None else set()
        messages = [
            {"role": m["role"], "content": ELIDED if i in elided else m["content"]}
            for i, m in enumerate(self._messages)
        ]
        total = sum(len(m["content"]) for m in messages)
        over = total > self.max_context_chars
        # Cut from the newest message backwards until the conversation fits the space.
        for message in reversed(messages):
            if total <= self.max_context_chars:
                break
            excess = total - self.max_context_chars
            marker = "\n[... cut: context budget]"
            keep_chars = max(0, len(message["content"]) - excess - len(marker))
            new_content = message["content"][:keep_chars] + marker if keep_chars else ""
            total += len(new_content) - len(message["content"])
            message["content"] = new_content
        return tuple(messages), over

    def _weigh(self, terms: RewardTerms) -> float:
        return float(sum(self.reward_weights.get(name, 0.0) * value for name, value in terms.raw.items()))

    def _info(self, raw_terms: Mapping[str, float], errors: Mapping[str, str | None] | None = None, **extra: Any):
        return {
            "turn": self.turn,
            "tool_calls": self.tool_calls,
            "reward_terms": {name: self.reward_weights.get(name, 0.0) * value for name, value in raw_terms.items()},
            "parse_error": None,
            "tool_error": None,
            **(errors or {}),
            **extra,
            **self._task_info(),
        }
