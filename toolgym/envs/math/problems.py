"""Arithmetic word problems: generated offline with exact answers, or GSM8K.

A ``MathProblem`` carries the question, the exact answer, and the solution as calculator steps
(``expression``, ``value``): the oracle replays them, and the env gives a process reward when a
calculator result reaches one of these intermediate values.

The generator draws every number from a ``numpy.random.Generator``, so a seed gives the same
problem everywhere; answers are computed by the calculator itself from the recorded steps, so a
problem and its answer cannot disagree.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from toolgym.envs.deps import require
from toolgym.envs.math.calculator import CalculatorError, evaluate, format_number
from toolgym.envs.records import DatasetFormatError, load_from_hub, read_records


@dataclass(frozen=True)
class MathProblem:
    """One problem. ``steps`` are ``(expression, value)`` pairs whose last value is the answer."""

    id: str
    question: str
    answer: str
    steps: tuple[tuple[str, str], ...] = ()
    source: str = "synthetic"

    @property
    def value(self) -> Fraction:
        return evaluate(self.answer)


class _Solution:
    """Records calculator steps; each step's value is computed by the calculator itself."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, str]] = []

    def __call__(self, expression: str) -> str:
        value = format_number(evaluate(expression))
        self.steps.append((expression, value))
        return value


_NAMES = ("Ava", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hiro", "Isla", "Jamal", "Kira", "Liam",
          "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Yusuf", "Zoe")
_GOODS = (("notebook", "notebooks"), ("pen", "pens"), ("apple", "apples"), ("ticket", "tickets"),
          ("cupcake", "cupcakes"), ("plant", "plants"), ("book", "books"), ("candle", "candles"))
_THINGS = ("marbles", "stickers", "stamps", "shells", "cards", "beads", "coins", "buttons")


def _int(rng: np.random.Generator, low: int, high: int) -> int:
    """A uniform integer in [low, high]."""
    return int(rng.integers(low, high + 1))


def _pick(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(len(items)))]


def _shopping(rng, s: _Solution) -> str:
    name = _pick(rng, _NAMES)
    (one_a, many_a), (one_b, many_b) = (_GOODS[i] for i in rng.choice(len(_GOODS), 2, replace=False))
    a, b = _int(rng, 2, 9), _int(rng, 2, 9)
    pa, pb = _int(rng, 2, 40) / 4, _int(rng, 1, 30) / 2  # prices in quarters and halves
    cost_a = s(f"{a} * {pa:g}")
    cost_b = s(f"{b} * {pb:g}")
    total = s(f"{cost_a} + {cost_b}")
    bill = 20 * (int(float(total)) // 20 + 1 + _int(rng, 0, 2))
    s(f"{bill} - {total}")
    return (f"{name} buys {a} {many_a} at ${pa:.2f} each and {b} {many_b} at ${pb:.2f} each, and pays "
            f"with ${bill}. How many dollars of change does {name} get back?")


def _collection(rng, s: _Solution) -> str:
    name, thing = _pick(rng, _NAMES), _pick(rng, _THINGS)
    start, bags, per_bag = _int(rng, 10, 90), _int(rng, 2, 8), _int(rng, 5, 25)
    friends = _int(rng, 2, 6)
    after = s(f"{start} + {bags} * {per_bag}")
    each = _int(rng, 1, max(1, int(after) // (2 * friends)))
    s(f"{after} - {friends} * {each}")
    return (f"{name} has {start} {thing}. {name} buys {bags} bags with {per_bag} {thing} in each, then gives "
            f"{each} {thing} to each of {friends} friends. How many {thing} does {name} have now?")


def _factory(rng, s: _Solution) -> str:
    rate, hours, days = _int(rng, 12, 150), _int(rng, 4, 12), _int(rng, 3, 7)
    percent = _pick(rng, (2, 4, 5, 10, 20, 25))
    made = s(f"{rate} * {hours} * {days}")
    bad = s(f"{made} * {percent} / 100")
    s(f"{made} - {bad}")
    return (f"A machine makes {rate} parts an hour and runs {hours} hours a day for {days} days. "
            f"{percent}% of the parts are defective. How many good parts does it make?")


def _discount(rng, s: _Solution) -> str:
    thing = _pick(rng, ("jacket", "bicycle", "lamp", "guitar", "backpack", "watch"))
    price, off, tax = 20 * _int(rng, 2, 30), 5 * _int(rng, 1, 9), _pick(rng, (5, 8, 10, 15, 20))
    sale = s(f"{price} * (100 - {off}) / 100")
    s(f"{sale} * (100 + {tax}) / 100")
    return (f"A {thing} costs ${price}. It is on sale for {off}% off, and then a {tax}% sales tax is added to "
            "the sale price. What is the final price in dollars?")


def _average(rng, s: _Solution) -> str:
    name = _pick(rng, _NAMES)
    count = _pick(rng, (2, 4, 5))  # averages over 2, 4 or 5 scores end in finite decimals
    scores = [_int(rng, 55, 100) for _ in range(count)]
    total = s(" + ".join(map(str, scores)))
    s(f"{total} / {count}")
    return (f"{name} scored {', '.join(map(str, scores[:-1]))} and {scores[-1]} on {count} tests. "
            f"What is {name}'s average score?")


def _hours(n: int) -> str:
    return "1 hour" if n == 1 else f"{n} hours"


def _trip(rng, s: _Solution) -> str:
    v1, v2, hours = _int(rng, 40, 120), _int(rng, 30, 110), _pick(rng, (2, 4, 5, 8))  # finite decimals
    t1 = _int(rng, 1, hours - 1)
    t2 = hours - t1
    d1 = s(f"{v1} * {t1}")
    d2 = s(f"{v2} * {t2}")
    total = s(f"{d1} + {d2}")
    s(f"{total} / ({t1} + {t2})")
    return (f"A train travels at {v1} km/h for {_hours(t1)}, then at {v2} km/h for {_hours(t2)}. "
            "What is its average speed over the whole trip, in km/h?")


def _ages(rng, s: _Solution) -> str:
    a, b = (_NAMES[i] for i in rng.choice(len(_NAMES), 2, replace=False))
    child, times, older, later = _int(rng, 2, 12), _int(rng, 2, 4), _int(rng, 3, 30), _int(rng, 2, 15)
    parent = s(f"{child} * {times}")
    s(f"{parent} + {older} + {later}")
    return (f"{b}'s cousin is {child} years old. {b} is {times} times as old as the cousin, and {a} is "
            f"{older} years older than {b}. How old will {a} be in {later} years?")


def _savings(rng, s: _Solution) -> str:
    name = _pick(rng, _NAMES)
    weekly, weeks, spent, goal = _int(rng, 5, 60), _int(rng, 3, 20), _int(rng, 5, 80), _int(rng, 2, 5)
    saved = s(f"{weekly} * {weeks} - {spent}")
    s(f"{saved} * {goal}")
    return (f"{name} saves ${weekly} every week for {weeks} weeks and then spends ${spent} on a gift. "
            f"{name}'s sister has saved {goal} times as much as what {name} has left. "
            "How many dollars has the sister saved?")


TEMPLATES: dict[str, Callable[[np.random.Generator, _Solution], str]] = {
    "shopping": _shopping, "collection": _collection, "factory": _factory, "discount": _discount,
    "average": _average, "trip": _trip, "ages": _ages, "savings": _savings,
}


def generate_problem(rng: np.random.Generator, templates: Sequence[str] = tuple(TEMPLATES)) -> MathProblem:
    """A fresh problem drawn from ``rng``; its id names the template and a hash of its text."""
    name = templates[int(rng.integers(len(templates)))]
    solution = _Solution()
    question = TEMPLATES[name](rng, solution)
    answer = solution.steps[-1][1]
    digest = hashlib.sha1(question.encode()).hexdigest()[:10]
    return MathProblem(f"{name}-{digest}", question, answer, tuple(solution.steps))


# -- GSM8K ----------------------------------------------------------------------------------
_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")


def gsm8k_problem(record: dict, index: int, split: str) -> MathProblem:
    """A GSM8K record (``question``; ``answer`` = reasoning with ``<<expr=value>>`` calculator
    annotations, then ``#### final``) as a ``MathProblem``. Annotations the calculator cannot
    reproduce exactly are left out of the steps."""
    reasoning, sep, final = str(record["answer"]).rpartition("####")
    if not sep:
        raise ValueError(f"GSM8K record {index} has no '#### answer' line: {str(record['answer'])[-80:]!r}")
    final = final.strip().replace(",", "")
    try:
        answer = format_number(evaluate(final))
    except CalculatorError as err:
        raise ValueError(f"GSM8K record {index}: the final answer {final!r} is not a number ({err})") from None
    steps = []
    for expression, value in _ANNOTATION.findall(reasoning):
        try:
            if evaluate(expression) == evaluate(value.strip()):
                steps.append((expression.strip(), format_number(evaluate(value.strip()))))
        except CalculatorError:
            continue
    return MathProblem(f"gsm8k-{split}-{index}", str(record["question"]).strip(), answer, tuple(steps), "gsm8k")


def _gsm8k_records(rows, data_files):
    """Records of a local GSM8K file, each checked for the two string fields it needs."""
    for source, index, record in rows:
        if not isinstance(record, dict):
            raise DatasetFormatError(f"{source}: record {index} should be a JSON object, got {type(record).__name__}.")
        for field in ("question", "answer"):
            if not isinstance(record.get(field), str):
                raise DatasetFormatError(
                    f"{source}: record {index}: field {field!r} is missing or not a string (fields present: "
                    f"{', '.join(sorted(record)) or 'none'}); GSM8K lines are {{\"question\": ..., \"answer\": "
                    "\"... #### 42\"}."
                )
        yield record


def gsm8k_path(data_files) -> str:
    """``data_files`` as the one path a GSM8K env takes; another type is an error saying what to pass."""
    if not isinstance(data_files, str | os.PathLike):
        raise DatasetFormatError(f"data_files={data_files!r:.60} is a {type(data_files).__name__}: pass the path of a "
                            "GSM8K JSONL file, e.g. data_files='gsm8k/test.jsonl'.")
    return str(data_files)


def load_gsm8k(split: str = "train", data_files: str | Path | None = None, limit: int | None = None) -> list[MathProblem]:
    """GSM8K from the hub (``openai/gsm8k``, config ``main``) or from a local JSONL file in the
    same format (one ``{"question": ..., "answer": ...}`` a line)."""
    if data_files is not None:
        if isinstance(data_files, str | Path) and not Path(data_files).is_file():
            raise FileNotFoundError(
                f"GSM8K data_files={str(data_files)!r} does not exist; give a JSONL file of question/answer records."
            )
        # The QA loaders' reader: a bad, binary, truncated or fake-compressed file names itself and the line.
        records = _gsm8k_records(read_records(data_files), data_files)
    else:
        require("datasets", "bench", user="GSM8K from the hub")
        records = load_from_hub("openai/gsm8k", "main", split, display="GSM8K",
                                official="https://github.com/openai/grade-school-math (grade_school_math/data/*.jsonl)")
    problems = []
    for index, record in enumerate(records):
        if limit is not None and index >= limit:
            break
        try:
            problems.append(gsm8k_problem(record, index, split))
        except ValueError as err:
            if data_files is None:
                raise
            raise DatasetFormatError(f"{data_files}: {err}") from None
    if not problems:
        raise ValueError(f"No GSM8K problems in split {split!r}" + (f" of {data_files}" if data_files else ""))
    return problems
