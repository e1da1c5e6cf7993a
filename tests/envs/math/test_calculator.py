"""The calculator: exact arithmetic with Python's precedence, and refusals that name the problem."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolgym.envs.math.calculator import CalculatorError, CalculatorTool, Limits, evaluate, format_number


@pytest.mark.parametrize(("expression", "value"), [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 / 4", Fraction(5, 2)),
    ("0.1 + 0.2", Fraction(3, 10)),
    ("2 ** 3 ** 2", 512),  # right-associative
    ("-2 ** 2", -4),  # ** binds tighter than a unary minus on its left
    ("2 ** -2", Fraction(1, 4)),
    ("(-2) ** 3", -8),
    ("--3", 3),
    ("7 % 3", 1),
    ("-7 % 3", 2),  # Python's sign rule
    ("7.5 % 2", Fraction(3, 2)),
    ("1,250 * 2", 2500),
    ("$12.50 * 4", 50),
    ("1.5e3 / 3", 500),
    ("6 × 7 ÷ 2 − 1", 20),
    ("  ((4))  ", 4),
])
def test_evaluates_exactly(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize(("expression", "limits", "message"), [
    ("9**9**9", Limits(), "would have about 369693100 digits; the limit is 1000"),
    ("(2**100)**100", Limits(), "digits; the limit is 1000"),
    ("2**100000", Limits(max_result_digits=10**6), "the exponent 100000 is beyond the limit of 10000"),
    ("1" * 10_000, Limits(), "10000 characters; the limit is 300"),
    ("1" * 10_000, Limits(max_length=20_000), "has 10000 digits; the limit is 40"),
    ("1e999999", Limits(), "exponent beyond 1000"),
    ("2 ** 0.5", Limits(), "not a whole number"),
    ("0 ** -1", Limits(), "negative power"),
    ("1 / 0", Limits(), "division by zero"),
    ("5 % (3 - 3)", Limits(), "division by zero"),
    ("2 ^ 3", Limits(), "use ** for powers"),
    ("sqrt(4)", Limits(), "no functions or variables"),
    ("__import__('os').system('ls')", Limits(), "unexpected character '_'"),
    ("(1 + 2", Limits(), "never closed"),
    ("1 + 2)", Limits(), "closes nothing"),
    ("2 (3)", Limits(), "an operator is missing"),
    ("3 +", Limits(), "ends too early"),
    ("", Limits(), "empty"),
    ("(" * 60 + "1" + ")" * 60, Limits(), "nests deeper than 40"),
    ("-" * 100 + "1", Limits(), "nests deeper than 40"),
    ("2 * 3", Limits(max_seconds=1e-12), "took longer than"),
    # Exponents too big for a float: OverflowError before the digit check.
    ("2**1e400", Limits(), "would have more than 10**308 digits"),
    ("0.5**-1e400", Limits(), "would have more than 10**308 digits"),
    # An exponent beyond Python's 4,300-digit int parsing: ValueError before the range check.
    ("1e" + "9" * 5000, Limits(max_length=10_000), "exponent beyond 1000"),
])
def test_refuses_with_a_message_that_names_the_problem(expression, limits, message):
    with pytest.raises(CalculatorError) as err:
        evaluate(expression, limits)
    assert message in str(err.value)


def test_intermediate_results_are_bounded_too():
    # Each power is allowed on its own; their product is not.
    with pytest.raises(CalculatorError, match="intermediate result has more than 1000 digits"):
        evaluate("10**600 * 10**600")


def test_tool_reports_errors_as_failed_results_never_raises():
    tool = CalculatorTool()
    result = tool({"expression": "9**9**9"})
    assert not result.ok and result.metadata["calc_error"] and result.content.startswith("Error: calculator:")
    assert tool({"expression": 42}).metadata["invalid_arguments"]
    ok = tool({"expression": "1/3"})
    assert ok.ok and ok.content == "1/3 = 0.333333333333 (exactly 1/3)"
    assert (ok.metadata["numerator"], ok.metadata["denominator"]) == (1, 3)


@pytest.mark.parametrize(("value", "text"), [
    (Fraction(42), "42"), (Fraction(-5, 2), "-2.5"), (Fraction(1, 8), "0.125"), (Fraction(2, 3), "0.666666666667"),
    (Fraction(1, 10**20), "1e-20"),
])
def test_format_number(value, text):
    assert format_number(value) == text


_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
_exprs = st.recursive(
    st.integers(-10**6, 10**6).map(lambda n: (f"({n})", Fraction(n))),
    lambda inner: st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
        lambda t: (f"({t[0][0]} {t[1]} {t[2][0]})",
                   (t[0][1] / t[2][1] if t[2][1] else None) if t[1] == "/" else _OPS[t[1]](t[0][1], t[2][1]))
        if t[0][1] is not None and t[2][1] is not None else (f"({t[0][0]} {t[1]} {t[2][0]})", None)
    ),
    max_leaves=8,
)


# Arithmetic only: the 0.5 s wall-clock guard is tested on its own, and a busy CI machine can
# pause any single call past it (seen once on a three-operation expression).
_NO_CLOCK = Limits(max_seconds=3600)


@settings(max_examples=200, deadline=None)
@given(_exprs)
def test_agrees_with_fraction_arithmetic(case):
    expression, expected = case
    if expected is None:  # a division by zero somewhere
        with pytest.raises(CalculatorError, match="division by zero"):
            evaluate(expression, _NO_CLOCK)
    else:
        assert evaluate(expression, _NO_CLOCK) == expected


def test_tool_reports_overflowing_powers_as_calc_errors():
    result = CalculatorTool()({"expression": "2**1e400"})
    assert not result.ok and result.metadata["calc_error"] and "10**308 digits" in result.error
