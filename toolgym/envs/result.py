"""The end of an episode: the one result every toolgym env reports, and the one its consumers read.

The contract:

- The step that ends an episode (``terminated`` or ``truncated``) carries ``info["result"]``:
  ``EpisodeResult.to_dict()``, a plain JSON-serialisable dict. No other step carries it (an
  episode still running has no result; nor does a step after the end).
- ``success`` (bool): the task was solved. ``score`` (float in [0, 1]): the task's graded measure,
  1.0 for a full solution. ``answer``: the agent's final answer as text, None when it gave none.
  ``gold``: the reference answer, None when the task has none. ``extras``: anything else a task
  reports about the episode, under the task's own name (``{"qa": {"em": 1.0, ...}}``); consumers
  that do not know the task ignore it.
- Consumers (the trainer's logs, the benchmark runner, the integrations, the command line) read
  ``EpisodeResult.from_info(info)`` and never keys an env invents for them.

What each toolgym task reports:

| env | ``success`` | ``score`` | ``answer`` / ``gold`` | ``extras`` |
|---|---|---|---|---|
| MultiHopQA and the QA ids | exact match | F1 (the dataset's official rule) | the answer / the first gold answer | ``qa``: ``em``, ``f1``, ``subem`` |
| ToolMath-v0 | the number is right | 1.0 if right | the answer / the gold number | ``math``: ``gold_steps`` |
| SQLQuery-v0 | the values are right | 1.0 if right | the answer / the gold values | ``sql``: ``gold_sql`` |
| Wordle-v0 | the word was found | 1.0 if found | the last valid guess / the secret | none |

A ``ToolEnv`` subclass returns an ``EpisodeResult`` from its ``_episode_result()`` hook; ``ToolEnv``
validates it and puts it in the final ``info``. ``toolgym.envs.checker.check_tool_env`` checks the
whole contract on any env.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The key of the final step's ``info`` that holds the result.
RESULT_KEY = "result"
FIELDS = ("success", "score", "answer", "gold", "extras")


@dataclass(frozen=True)
class EpisodeResult:
    """How an episode ended, in terms every consumer understands (see the module docstring).

    >>> result = EpisodeResult(success=True, score=1.0, answer="Paris", gold="Paris", extras={"qa": {"em": 1.0}})
    >>> EpisodeResult.from_info({"result": result.to_dict()}) == result
    True
    >>> EpisodeResult(success=1, score=1.0)
    Traceback (most recent call last):
    ...
    TypeError: EpisodeResult.success must be a bool, got int 1: pass bool(...) of the task's own test, e.g. success=bool(correct).
    """

    success: bool
    score: float
    answer: str | None = None
    gold: Any = None
    extras: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.success, (bool, np.bool_)):
            raise TypeError(f"EpisodeResult.success must be a bool, got {_seen(self.success)}: pass bool(...) of "
                            "the task's own test, e.g. success=bool(correct).")
        object.__setattr__(self, "success", bool(self.success))
        score = self.score
        if not isinstance(score, numbers.Real) or isinstance(score, bool):
            raise TypeError(f"EpisodeResult.score must be a number in [0, 1], got {_seen(score)}: pass the task's "
                            "graded measure, e.g. score=float(correct) or the answer's F1.")
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ValueError(f"EpisodeResult.score must be in [0, 1], got {score!r}: scale the task's measure to "
                             "[0, 1] (1.0 for a full solution); keep raw values in extras.")
        object.__setattr__(self, "score", float(score))
        if self.answer is not None and not isinstance(self.answer, str):
            raise TypeError(f"EpisodeResult.answer must be a str or None, got {_seen(self.answer)}: pass the "
                            "agent's final answer as text, or None when it gave none.")
        _check_json("gold", self.gold)
        if not isinstance(self.extras, Mapping):
            raise TypeError(f"EpisodeResult.extras must be a dict of task name -> dict, got {_seen(self.extras)}: "
                            "put task-specific keys under the task's own name, e.g. extras={'sql': {'gold_sql': ...}}.")
        extras = {}
        for task, values in self.extras.items():
            if not isinstance(task, str) or not isinstance(values, Mapping):
                raise TypeError(f"EpisodeResult.extras must map a task name (str) to a dict, got {task!r}: "
                                f"{_seen(values)}: e.g. extras={{'sql': {{'gold_sql': ...}}}}.")
            bad = next((k for k in values if not isinstance(k, str)), None)
            if bad is not None:
                raise TypeError(f"EpisodeResult.extras[{task!r}] keys must be str, got {_seen(bad)}.")
            _check_json(f"extras[{task!r}]", values)
            extras[task] = dict(values)
        object.__setattr__(self, "extras", extras)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form that goes in ``info["result"]`` (fresh objects every call)."""
        return json.loads(json.dumps({name: getattr(self, name) for name in FIELDS}))

    def metrics(self) -> dict[str, float]:
        """The numbers a logger averages over episodes: ``success`` (0 or 1), ``score``, and each
        numeric extra under its own name (QA: ``em``, ``f1``, ``subem``).

        >>> EpisodeResult(True, 1.0, extras={"qa": {"em": 1.0, "f1": 1.0}, "note": {"text": "x"}}).metrics()
        {'em': 1.0, 'f1': 1.0, 'success': 1.0, 'score': 1.0}
        """
        numbers_ = {key: float(value) for values in self.extras.values() for key, value in values.items()
                    if isinstance(value, (int, float)) and not isinstance(value, bool)}
        return {**numbers_, "success": float(self.success), "score": self.score}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeResult:
        """The result back from ``to_dict()``'s form; an error names the fields missing or unknown."""
        if not isinstance(data, Mapping):
            raise TypeError(f"info[{RESULT_KEY!r}] must be a dict (EpisodeResult.to_dict()), got {_seen(data)}.")
        missing = [name for name in ("success", "score") if name not in data]
        unknown = sorted(set(data) - set(FIELDS))
        if missing or unknown:
            raise ValueError(f"info[{RESULT_KEY!r}] must have the fields {', '.join(FIELDS)}; missing "
                             f"{missing or 'none'}, unknown {unknown or 'none'}: build it with EpisodeResult(...).to_dict(). "
                             "Task-specific keys go in extras under the task's name.")
        return cls(**{name: data[name] for name in FIELDS if name in data})

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> EpisodeResult | None:
        """The result of the episode whose last ``info`` this is; None while it is still running (or
        when it was stopped from outside the env: a token budget, a time limit, an agent error)."""
        data = info.get(RESULT_KEY)
        return None if data is None else cls.from_dict(data)


def _seen(value: Any) -> str:
    return f"{type(value).__name__} {value!r:.80}"


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"EpisodeResult.{name} must be JSON-serialisable (info is), got {_seen(value)}: {err}. "
                        "Use str, numbers, bools, None, lists and dicts with str keys.") from None
