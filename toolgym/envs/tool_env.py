"""ToolEnv: the Gymnasium environment of an agent that acts by writing text that calls tools.

One step is one assistant message. The env parses it with an action format, runs the tools it
calls, lets the task interpret each result (state, reward terms, the end of the episode), and
returns the conversation the agent should see next. Tools report what happened; the env decides
what it means.

A step has phases: ``plan_step`` parses the action and decides which calls run, the calls run, and
their results are applied in order. ``toolgym.envs.batch`` runs the calls of many envs together
between the first two (``preload``); a lone ``step()`` runs them itself.

The end of an episode is written down once: the step that ends it carries ``info["result"]``, an
``EpisodeResult`` (``toolgym.envs.result``) that the task builds in ``_episode_result()``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym

from toolgym.envs.errors import check_argument_types, check_non_negative, unknown_name_error
from toolgym.envs.formats import ActionFormat, ParsedAction, ToolCall, get_format
from toolgym.envs.result import RESULT_KEY, EpisodeResult
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


@dataclass(frozen=True)
class PlannedCall:
    """A call a step will go through, in order: ``tool`` is None for an unknown name, ``runs`` is
    False when the call budget is spent (the call is skipped with a note)."""

    call: ToolCall
    tool: Tool | None
    runs: bool


@dataclass(frozen=True)
class StepPlan:
    """What ``step(action)`` will do before any tool runs: the first phase of a step.

    ``text`` is the action as the conversation records it (cut to ``max_action_chars``),
    ``calls`` the calls it goes through (at most ``max_calls_per_turn``; ``skipped`` says more were
    asked). A call that ends the episode (``answer``) stops the step there: later calls never run.
    """

    action: Any
    text: str
    parsed: ParsedAction
    calls: tuple[PlannedCall, ...]
    skipped: bool
    action_error: str | None = None

    def ahead(self) -> list[int]:
        """The calls that may run before the step, and together with other envs' calls: those of
        pure tools (their results depend only on their arguments; one made moot by an earlier
        call that ends the episode is dropped)."""
        return [n for n, p in enumerate(self.calls) if p.runs and p.tool is not None and p.tool.pure]


class RewardTerms:
    """The raw reward terms of one step; the env weights them and sums them into the reward."""

    def __init__(self) -> None:
        self.raw: dict[str, float] = {}

    def add(self, name: str, value: float = 1.0) -> None:
        self.raw[name] = self.raw.get(name, 0.0) + float(value)


class ToolEnv(gym.Env[tuple, str]):
    """Base class of the toolgym environments; subclasses define the task.

    A subclass sets ``default_reward_weights`` and implements the task hooks: ``_make_tools``,
    ``_instructions``, ``_new_task``, ``_on_result``, ``_episode_result`` and ``oracle_action``,
    and optionally ``_task_info`` and ``_on_message``. Everything else (parsing, budgets, context,
    rewards, info, the spaces) is here. ``toolgym.envs.checker.check_tool_env(env)`` checks a
    subclass against the contract below.

    The contract, for every step: the observation is a fresh tuple of ``{"role", "content"}``
    messages; the reward is a finite float, the sum of the weighted terms in
    ``info["reward_terms"]``, each named in ``reward_weights``; ``terminated`` (the task ended)
    and ``truncated`` (a budget ran out, ``info["truncated_by"]`` says which) are never both
    true; ``info`` is JSON-serialisable with ``turn``, ``tool_calls``, ``reward_terms``,
    ``parse_error`` and ``tool_error``; no action text makes ``step()`` raise. The step that ends
    the episode, and only that one, carries ``info["result"]``: the ``EpisodeResult`` (success,
    score, answer, gold, task extras under the task's name) that ``_episode_result()`` returns,
    as a dict. Consumers read it with ``EpisodeResult.from_info(info)``.

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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_final_info" in vars(cls):  # the hook's former name: silently never called otherwise
            raise TypeError(f"{cls.__name__} defines _final_info(), which ToolEnv no longer calls: return an "
                            "EpisodeResult from _episode_result() instead (task-specific keys go in its extras).")

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
        check_argument_types(locals(), ToolEnv.__init__)
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
        self._preloaded: tuple[StepPlan, dict[int, ToolResult]] | None = None
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

    def _episode_result(self) -> EpisodeResult:
        """How the episode ended (called once, at its last step, terminated or truncated):
        success, score in [0, 1], the answer and the gold where they exist, and task-specific
        keys in ``extras`` under the task's own name."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement _episode_result() -> EpisodeResult: every env reports how "
            "its episodes end (see toolgym.envs.result).")

    def _on_message(self, text: str, terms: RewardTerms) -> None:
        """Score the assistant's message itself, before its calls run (e.g. a length penalty)."""

    def _task_info(self) -> dict[str, Any]:
        """Task state for every step's ``info`` (ids, progress); not how the episode ended."""
        return {}

    def call(self, tool: str, **arguments: Any) -> str:
        """Action text calling ``tool`` in this env's format: ``env.call("search", query="Paris")``."""
        return self.format.write_call(tool, arguments)

    def oracle_action(self) -> str:
        """What an agent that knows the solution writes now: calibrates rewards and benchmarks
        (the oracle must reach the maximum score) and writes the trainer's warm-start data."""
        raise NotImplementedError(f"{type(self).__name__} has no oracle.")

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
        self._preloaded = None
        task = self._new_task(options or {})
        self._messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": task}]
        self._result_indices = []
        observation, _ = self._observation()
        if self.render_mode == "human":
            self.render()
        return observation, self._info({})

    def plan_step(self, action: str) -> StepPlan:
        """The first phase of ``step(action)``: parse the action and decide which calls it goes
        through (unknown tools, the call budget, the per-message cap). Changes nothing."""
        if self._terminated or self._truncated:  # the step will only say so
            return StepPlan(action, "", ParsedAction(), (), False)
        action_error = None
        text = action
        if not isinstance(action, str):
            action_error = f"the action must be a str, got {type(action).__name__}"
            text = ""
        text = cut(text, self.max_action_chars)
        parsed = self.format.parse(text, self.tools)
        calls, used = [], self.tool_calls
        for call in parsed.calls[: self.max_calls_per_turn]:
            tool = self._tools_by_name.get(call.name)
            counted = tool is not None and tool.name not in self.free_tools
            runs = tool is not None and not (counted and used >= self.max_tool_calls)
            used += int(runs and counted)
            calls.append(PlannedCall(call, tool, runs))
        return StepPlan(action, text, parsed, tuple(calls), len(parsed.calls) > self.max_calls_per_turn, action_error)

    def preload(self, plan: StepPlan, results: Mapping[int, ToolResult]) -> None:
        """Results of some of ``plan``'s calls (by position), run elsewhere (``toolgym.envs.batch``):
        the next ``step(plan.action)`` uses them instead of running those calls. Any other step or
        a reset discards them."""
        self._preloaded = (plan, dict(results))

    def step(self, action: str):
        terms = RewardTerms()
        errors: dict[str, str | None] = {"parse_error": None, "tool_error": None}
        preloaded, self._preloaded = self._preloaded, None
        if self._terminated or self._truncated:
            terms.add("format")
            errors["parse_error"] = "the episode has ended; call reset() to start a new one"
            observation, _ = self._observation()
            return observation, self._weigh(terms), self._terminated, self._truncated, self._info(terms.raw, errors)

        if preloaded is not None and (preloaded[0].action is action or
                                      (isinstance(action, str) and preloaded[0].action == action)):
            plan, ready = preloaded
        else:
            plan, ready = self.plan_step(action), {}
        if plan.action_error is not None:
            errors["parse_error"] = plan.action_error
        text = plan.text
        self._messages.append({"role": "assistant", "content": text})
        self.turn += 1
        self._on_message(text, terms)

        parsed = plan.parsed
        results, feedback, ended, out_of_calls = self._run_calls(plan, ready, terms, errors)
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
            info[RESULT_KEY] = self._result().to_dict()
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
    def _run_calls(self, plan: StepPlan, ready: Mapping[int, ToolResult], terms: RewardTerms,
                   errors: dict[str, str | None]):
        """Run the plan's calls in order (or take their ``ready`` results) and apply each result;
        a call that ends the episode stops the step there."""
        results: list[str] = []
        feedback: list[str] = []
        ended = out_of_calls = False
        for number, (call, tool, runs) in enumerate((p.call, p.tool, p.runs) for p in plan.calls):
            if tool is None:
                error = str(unknown_name_error("tool", call.name, self._tools_by_name))
                result = ToolResult.failure(error, invalid_arguments=True)
            elif not runs:
                feedback.append(f"Note: the budget of {self.max_tool_calls} tool calls is spent; {call.name!r} was not run.")
                out_of_calls = True
                continue
            else:
                result = ready[number] if number in ready else tool(call.arguments)
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
        else:
            if plan.skipped:
                feedback.append(f"Note: only {self.max_calls_per_turn} calls run per message; the rest were skipped.")
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

    def _result(self) -> EpisodeResult:
        result = self._episode_result()
        if not isinstance(result, EpisodeResult):
            raise TypeError(f"{type(self).__name__}._episode_result() must return an EpisodeResult, got "
                            f"{type(result).__name__} {result!r:.80}: return EpisodeResult(success=..., score=..., "
                            "answer=..., gold=..., extras={task: {...}}).")
        return result

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
