"""ToolMath: solve arithmetic word problems with an exact calculator, then answer."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from toolgym.envs.errors import check_argument_types, unknown_name_error
from toolgym.envs.formats import ToolCall
from toolgym.envs.math.calculator import CalculatorTool, Limits, evaluate
from toolgym.envs.math.problems import TEMPLATES, MathProblem, generate_problem, gsm8k_path, load_gsm8k
from toolgym.envs.result import EpisodeResult
from toolgym.envs.tool import AnswerTool, Tool, ToolResult
from toolgym.envs.tool_env import RewardTerms, ToolEnv

DATASETS = ("synthetic", "gsm8k")
_LAST_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def parse_answer(text: str) -> Fraction | None:
    """The number an answer states: ``"$1,250.50"``, ``"3/4"``, ``"42 apples"``, ``"x = 7."``.

    The whole text is read as an expression first (so ``"3/4"`` is three quarters); otherwise the
    last number in it counts. None when there is no number.

    >>> parse_answer("$1,250.50"), parse_answer("She has 42 apples."), parse_answer("none")
    (Fraction(2501, 2), Fraction(42, 1), None)
    """
    cleaned = text.strip().rstrip(".").replace("%", "").strip()
    try:
        return evaluate(cleaned)
    except (ArithmeticError, ValueError, RecursionError):  # CalculatorError, or a limit it missed
        pass
    numbers = _LAST_NUMBER.findall(cleaned)
    if not numbers:
        return None
    try:
        return evaluate(numbers[-1])
    except (ArithmeticError, ValueError, RecursionError):
        return None


def answers_match(given: Fraction | None, gold: Fraction, tolerance: float) -> bool:
    """Equal up to a relative ``tolerance`` (absolute below 1), so rounding in the last places passes."""
    return given is not None and abs(given - gold) <= Fraction(tolerance) * max(1, abs(gold))


class ToolMathEnv(ToolEnv):
    """Solve a multi-step arithmetic word problem with a ``calculator`` tool, then ``answer``.

    ## Description
    Each episode draws a word problem that takes two to four operations (shopping and change,
    rates, discounts and tax, averages, ages, savings). Problems are generated offline from the
    episode's seed with exact answers (``dataset="synthetic"``, unlimited and deterministic); GSM8K
    loads through ``datasets`` (``dataset="gsm8k"``) or from a local JSONL file in its format.
    The calculator is exact (fractions) and safe: its own parser, no ``eval``, with limits on the
    expression's length, nesting, digits, exponents and time; an expression it refuses (``9**9**9``,
    a number with 10,000 digits) comes back as an error that says why.

    ## Action Space
    Any string: the assistant's message. ``hermes``:
    ``<tool_call>{"name": "calculator", "arguments": {"expression": "3 * (4 + 5)"}}</tool_call>``
    and ``{"name": "answer", "arguments": {"answer": "27"}}``; ``tags``:
    ``<calculator>3 * (4 + 5)</calculator>`` and ``<answer>27</answer>``.

    ## Observation Space
    ``Messages``: the system prompt, the problem, then the assistant's messages and the results.

    ## Rewards
    The step reward is the weighted sum of named terms, reported in ``info["reward_terms"]``:

    | term           | raw value                                                      | default weight |
    |----------------|----------------------------------------------------------------|----------------|
    | ``answer``     | 1 when the answer equals the gold answer (up to ``tolerance``)  | 1.0            |
    | ``progress``   | calculator results equal to a gold intermediate value, 1st time | 0.05           |
    | ``calc_error`` | expressions the calculator refused (syntax, limits, 1/0)        | -0.05          |
    | ``valid_call`` | tool calls that ran                                             | 0.02           |
    | ``format``     | malformed calls, unknown tools, bad arguments                   | -0.1           |

    ## Episode End
    ``terminated`` when the agent calls ``answer``. ``truncated`` when ``max_turns`` messages
    were written, a call was asked beyond ``max_tool_calls``, or the context outgrew
    ``max_context_chars`` (``info["truncated_by"]`` says which). Never both.
    The last step's ``info["result"]`` (``toolgym.envs.result``): success when the number is
    right, score 1.0 then, the answer and the gold number, ``extras["math"]["gold_steps"]``.

    ## Arguments
    ``dataset``: ``"synthetic"`` (default) or ``"gsm8k"``. ``split``: GSM8K's ``"train"`` or
    ``"test"``. ``data_files``: a local GSM8K-format JSONL file instead of the hub.
    ``limit``: load at most this many GSM8K problems. ``templates``: the synthetic problem
    families to draw from (default: all of ``toolgym.envs.math.problems.TEMPLATES``).
    ``tolerance``: relative tolerance of the answer check (1e-6). ``calculator``: overrides of
    the calculator ``Limits`` (``{"max_length": 300, "max_result_digits": 1000, ...}``).
    Budgets and context options: see ``ToolEnv``.

    ## Version History
    * v0: initial version.

    >>> import gymnasium as gym, toolgym
    >>> env = gym.make("ToolMath-v0", format="tags")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step("<calculator>(3 + 4) * 2 - 10 / 4</calculator>")
    >>> obs[-1]["content"]
    '<information>(3 + 4) * 2 - 10 / 4 = 11.5</information>'
    >>> obs, reward, terminated, truncated, info = env.step("<calculator>9**9**9</calculator>")
    >>> info["tool_error"]
    'calculator: the result of 9 ** 387420489 would have about 369693100 digits; the limit is 1000'
    >>> obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
    >>> info["progress"] > 0
    True
    >>> obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
    >>> terminated, info["result"]["success"], info["reward_terms"]
    (True, True, {'valid_call': 0.02, 'answer': 1.0})
    """

    default_reward_weights: ClassVar[dict[str, float]] = {
        **ToolEnv.default_reward_weights,
        "answer": 1.0,
        "progress": 0.05,
        "calc_error": -0.05,
    }

    def __init__(
        self,
        dataset: str = "synthetic",
        split: str = "train",
        *,
        data_files: str | Path | None = None,
        limit: int | None = None,
        templates: Sequence[str] | None = None,
        tolerance: float = 1e-6,
        calculator: Mapping[str, Any] | None = None,
        **budgets: Any,
    ):
        check_argument_types({**locals(), **budgets}, ToolMathEnv.__init__, ToolEnv.__init__)
        if dataset not in DATASETS:
            raise unknown_name_error("dataset", dataset, DATASETS)
        if dataset == "synthetic" and (data_files is not None or limit is not None):
            raise ValueError("data_files= and limit= apply to dataset='gsm8k' only; the synthetic problems are unlimited.")
        self.templates = tuple(templates) if templates is not None else tuple(TEMPLATES)
        for name in self.templates:
            if name not in TEMPLATES:
                raise unknown_name_error("problem template", name, TEMPLATES)
        if not self.templates:
            raise ValueError("templates= is empty; give at least one of: " + ", ".join(TEMPLATES))
        if not 0 <= tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}.")
        self.dataset, self.split, self.tolerance = dataset, split, tolerance
        self.limits = Limits(**dict(calculator or {}))
        self.problems: tuple[MathProblem, ...] = ()
        if dataset == "gsm8k":
            self.problems = _gsm8k(split, gsm8k_path(data_files) if data_files is not None else None, limit)
        self.problem: MathProblem | None = None
        super().__init__(**budgets)

    # -- the task -----------------------------------------------------------------------------
    def _make_tools(self) -> Sequence[Tool]:
        return (CalculatorTool(self.limits), AnswerTool("Give the final answer: a number only, e.g. 12.5 (no units, no working)."))

    def _instructions(self) -> str:
        return (
            "You solve arithmetic word problems. Work step by step and do every computation with the "
            "calculator tool (it is exact). When you know the result, give it with the answer tool as "
            "a number only, e.g. 12.5."
        )

    def _new_task(self, options: Mapping[str, Any]) -> str:
        if self.problems:
            index = int(options["index"]) if "index" in options else int(self.np_random.integers(len(self.problems)))
            self.problem = self.problems[index % len(self.problems)]
        else:
            self.problem = generate_problem(self.np_random, self.templates)
        self._gold = self.problem.value
        self._targets = {evaluate(value) for _, value in self.problem.steps}
        self._reached: set[Fraction] = set()
        self._answer: str | None = None
        self._correct = False
        return f"Problem: {self.problem.question}"

    def _on_result(self, call: ToolCall, result: ToolResult, terms: RewardTerms) -> bool:
        if call.name == "calculator":
            if result.metadata.get("calc_error"):
                terms.add("calc_error")
            elif result.ok:
                value = Fraction(result.metadata["numerator"], result.metadata["denominator"])
                if value in self._targets and value not in self._reached:
                    self._reached.add(value)
                    terms.add("progress")
            return False
        if call.name == "answer" and result.ok:
            self._answer = str(result.metadata.get("answer", ""))
            self._correct = answers_match(parse_answer(self._answer), self._gold, self.tolerance)
            terms.add("answer", float(self._correct))
            return True
        return False

    def oracle_action(self) -> str:
        """The gold steps not yet reached (as many as one message may run), then the answer."""
        todo = [expr for expr, value in self.problem.steps if evaluate(value) not in self._reached]
        if todo:
            return "".join(self.call("calculator", expression=e) for e in todo[: self.max_calls_per_turn])
        return self.call("answer", answer=self.problem.answer)

    def _task_info(self) -> dict[str, Any]:
        problem_id = self.problem.id if self.problem is not None else None
        return {"problem_id": problem_id, "progress": len(self._reached) if self.problem is not None else 0}

    def _episode_result(self) -> EpisodeResult:
        return EpisodeResult(success=self._correct, score=float(self._correct), answer=self._answer,
                             gold=self.problem.answer, extras={"math": {"gold_steps": len(self._targets)}})


@lru_cache(maxsize=8)
def _gsm8k(split: str, data_files: str | None, limit: int | None) -> tuple[MathProblem, ...]:
    """GSM8K loaded once per process: every env (and vector env) over it shares the problems."""
    return tuple(load_gsm8k(split, data_files, limit))

