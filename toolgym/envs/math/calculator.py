"""A safe exact calculator: its own tokenizer and recursive-descent parser, never ``eval``.

Numbers are ``fractions.Fraction``, so ``0.1 + 0.2`` is exactly ``0.3`` and ``10 / 4`` is
``5/2``. Grammar (Python's precedence; ``**`` is right-associative and binds tighter than a unary
minus on its left, so ``-2**2`` is ``-4`` and ``2**-1`` is ``1/2``)::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/" | "%") unary)*
    unary := ("+" | "-") unary | power
    power := atom ("**" unary)?
    atom  := NUMBER | "(" expr ")"

Limits keep every call small and fast: the length of the expression, the nesting depth, the
digits of a literal, the size of any intermediate result (checked *before* a power is computed,
so ``9**9**9`` is refused at once), and a deadline.

>>> evaluate("(3 + 4) * 2 - 10 / 4")
Fraction(23, 2)
>>> format_number(evaluate("1,250 * 0.08"))
'100'
>>> evaluate("9**9**9")
Traceback (most recent call last):
...
toolgym.envs.math.calculator.CalculatorError: the result of 9 ** 387420489 would have about 369693100 digits; the limit is 1000
"""

from __future__ import annotations

import decimal
import math
import re
import time
from dataclasses import dataclass
from fractions import Fraction

from toolgym.envs.tool import Tool, ToolResult, string_arguments


class CalculatorError(ValueError):
    """An expression the calculator refuses: the message says what and where."""


@dataclass(frozen=True)
class Limits:
    """What one calculation may use. The defaults suit word problems with room to spare."""

    max_length: int = 300  # characters of the expression
    max_depth: int = 40  # nested parentheses and unary signs
    max_literal_digits: int = 40  # digits of one number as written
    max_result_digits: int = 1000  # decimal digits of any intermediate numerator or denominator
    max_exponent: int = 10_000  # absolute value of an integer exponent
    max_seconds: float = 0.5  # wall-clock deadline, checked at every operation

    def __post_init__(self) -> None:
        for name in ("max_length", "max_depth", "max_literal_digits", "max_result_digits", "max_exponent"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be >= 1, got {getattr(self, name)!r}.")
        if self.max_seconds <= 0:
            raise ValueError(f"Limits.max_seconds must be > 0, got {self.max_seconds!r}.")


# A number: digits with optional thousands commas ("1,250"), an optional fraction part, an
# optional exponent ("2.5e3"). Commas are only thousands separators: there are no function calls.
_NUMBER = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?")
_OPERATORS = ("**", "+", "-", "*", "/", "%", "(", ")")
# Symbols people type for the same operators.
_ALIASES = {"×": "*", "·": "*", "÷": "/", "−": "-", "–": "-"}
_LOG2_10 = math.log2(10)


@dataclass(frozen=True)
class Token:
    kind: str  # "num" or the operator itself
    text: str
    pos: int
    value: Fraction | None = None


def tokenize(expression: str, limits: Limits = Limits()) -> list[Token]:
    """Split an expression into numbers and operators; anything else is an error naming it."""
    if len(expression) > limits.max_length:
        raise CalculatorError(
            f"the expression has {len(expression)} characters; the limit is {limits.max_length}. "
            "Split the calculation into several smaller ones."
        )
    for alias, symbol in _ALIASES.items():
        expression = expression.replace(alias, symbol)
    tokens: list[Token] = []
    pos = 0
    while pos < len(expression):
        char = expression[pos]
        if char.isspace() or char == "$":  # "$12.50" is a number of dollars
            pos += 1
            continue
        match = _NUMBER.match(expression, pos)
        if match:
            text = match.group(0)
            digits = sum(c.isdigit() for c in text.split("e")[0].split("E")[0])
            if digits > limits.max_literal_digits:
                raise CalculatorError(
                    f"the number at position {pos} has {digits} digits; the limit is {limits.max_literal_digits}"
                )
            tokens.append(Token("num", text, pos, _parse_number(text, pos, limits)))
            pos = match.end()
            continue
        operator = next((op for op in _OPERATORS if expression.startswith(op, pos)), None)
        if operator is None:
            hint = " (use ** for powers)" if char == "^" else ""
            hint = hint or (" (there are no functions or variables: write the numbers)" if char.isalpha() else "")
            raise CalculatorError(f"unexpected character {char!r} at position {pos}{hint}")
        tokens.append(Token(operator, operator, pos))
        pos += len(operator)
    return tokens


def _parse_number(text: str, pos: int, limits: Limits) -> Fraction:
    mantissa, _, exponent = text.replace(",", "").lower().partition("e")
    value = Fraction(mantissa)
    if exponent:
        # Checked on the text first: int() refuses more than 4,300 digits with a ValueError.
        if len(exponent.lstrip("+-0")) > len(str(limits.max_result_digits)) or abs(int(exponent)) > limits.max_result_digits:
            raise CalculatorError(f"the number {_short_text(text)} at position {pos} has an exponent beyond {limits.max_result_digits}")
        value *= Fraction(10) ** int(exponent)
    return value


class _Parser:
    """Recursive descent over the tokens; evaluates as it parses, checking the limits."""

    def __init__(self, tokens: list[Token], limits: Limits, length: int):
        self.tokens, self.limits, self.length = tokens, limits, length
        self.index = 0
        self.depth = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def where(self) -> str:
        token = self.peek()
        return f"at position {token.pos}" if token else "at the end"

    def parse(self) -> Fraction:
        if not self.tokens:
            raise CalculatorError("the expression is empty; write an arithmetic expression such as 12 * (3 + 4)")
        value = self.expr()
        if self.peek() is not None:
            token = self.peek()
            if token.kind == ")":
                raise CalculatorError(f"the ')' at position {token.pos} closes nothing")
            raise CalculatorError(f"unexpected {token.text!r} at position {token.pos}: an operator is missing before it")
        return value

    def expr(self) -> Fraction:
        value = self.term()
        while (token := self.peek()) is not None and token.kind in ("+", "-"):
            self.take()
            right = self.term()
            value = self.check(value + right if token.kind == "+" else value - right)
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while (token := self.peek()) is not None and token.kind in ("*", "/", "%"):
            self.take()
            right = self.unary()
            if token.kind == "*":
                value = self.check(value * right)
            elif right == 0:
                raise CalculatorError(f"division by zero ({token.text!r} at position {token.pos})")
            else:
                value = self.check(value / right if token.kind == "/" else value % right)
        return value

    def unary(self) -> Fraction:
        token = self.peek()
        if token is not None and token.kind in ("+", "-"):
            self.take()
            with self.nested():
                value = self.unary()
            return -value if token.kind == "-" else value
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        token = self.peek()
        if token is None or token.kind != "**":
            return base
        self.take()
        with self.nested():
            exponent = self.unary()
        return self.check(self.raise_to(base, exponent, token))

    def atom(self) -> Fraction:
        token = self.peek()
        if token is None:
            raise CalculatorError("the expression ends too early: a number or '(' is missing at the end")
        if token.kind == "num":
            self.take()
            return token.value
        if token.kind == "(":
            self.take()
            with self.nested():
                value = self.expr()
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise CalculatorError(f"the '(' at position {token.pos} is never closed")
            self.take()
            return value
        raise CalculatorError(f"expected a number or '(' at position {token.pos}, got {token.text!r}")

    def raise_to(self, base: Fraction, exponent: Fraction, token: Token) -> Fraction:
        if exponent.denominator != 1:
            raise CalculatorError(
                f"the exponent {_short(exponent)} at position {token.pos} is not a whole number; "
                "only whole exponents are exact"
            )
        power = exponent.numerator
        if base == 0 and power < 0:
            raise CalculatorError(f"0 cannot be raised to the negative power {power}")
        if base in (0, 1) or power == 0:
            return base**power
        if base == -1:
            return base**power
        # Digits of the result, estimated from logarithms before anything is computed. The
        # exponent may itself have hundreds of digits (2**1e400): too big for a float.
        size = max(math.log10(abs(base.numerator)), math.log10(base.denominator))
        try:
            digits = int(abs(power) * size) + 1
        except OverflowError:
            raise CalculatorError(
                f"the result of {_short(base)} ** {_short(exponent)} would have more than 10**308 digits; "
                f"the limit is {self.limits.max_result_digits}"
            ) from None
        if abs(power) > self.limits.max_exponent and digits <= self.limits.max_result_digits:
            raise CalculatorError(f"the exponent {power} is beyond the limit of {self.limits.max_exponent}")
        if digits > self.limits.max_result_digits:
            raise CalculatorError(
                f"the result of {_short(base)} ** {power} would have about {digits} digits; "
                f"the limit is {self.limits.max_result_digits}"
            )
        return base**power

    def check(self, value: Fraction) -> Fraction:
        if time.monotonic() > self.deadline:
            raise CalculatorError(f"the calculation took longer than {self.limits.max_seconds:g} s")
        limit_bits = self.limits.max_result_digits * _LOG2_10
        if value.numerator.bit_length() > limit_bits or value.denominator.bit_length() > limit_bits:
            raise CalculatorError(f"an intermediate result has more than {self.limits.max_result_digits} digits")
        return value

    def nested(self):
        parser = self

        class _Depth:
            def __enter__(self):
                parser.depth += 1
                if parser.depth > parser.limits.max_depth:
                    raise CalculatorError(f"the expression nests deeper than {parser.limits.max_depth} levels")

            def __exit__(self, *exc):
                parser.depth -= 1
                return False

        return _Depth()


def _short(value: Fraction) -> str:
    return _short_text(format_number(value))


def _short_text(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def evaluate(expression: str, limits: Limits = Limits()) -> Fraction:
    """The exact value of an arithmetic expression, or a ``CalculatorError`` that says why not."""
    return _Parser(tokenize(expression, limits), limits, len(expression)).parse()


def format_number(value: Fraction, max_decimals: int = 12) -> str:
    """An exact value as people write it: ``'42'``, ``'2.5'``, ``'-0.125'``; a value with no
    finite decimal expansion is rounded to ``max_decimals`` places (``'3.333333333333'``)."""
    if value.denominator == 1:
        return str(value.numerator)
    sign = "-" if value < 0 else ""
    scaled = abs(value) * 10**max_decimals
    digits = round(scaled)  # round half to even on the last place
    whole, frac = divmod(digits, 10**max_decimals)
    frac_text = str(frac).rjust(max_decimals, "0").rstrip("0")
    if whole == 0 and not frac_text:  # too small for max_decimals places: scientific notation
        with decimal.localcontext(decimal.Context(prec=max_decimals)):
            return f"{decimal.Decimal(value.numerator) / decimal.Decimal(value.denominator):e}"
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"


def is_finite_decimal(value: Fraction) -> bool:
    """True when ``value`` has a finite decimal expansion (its denominator is 2^a 5^b)."""
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


class CalculatorTool(Tool):
    """The ``calculator`` tool: one expression in, its exact value out (or the error)."""

    name = "calculator"
    description = (
        "Evaluate an arithmetic expression exactly: numbers, + - * / ** % and parentheses, "
        "e.g. (12 * 3.5 - 4) / 2. No variables or functions."
    )
    parameters = string_arguments(expression="The arithmetic expression to evaluate.")
    # Bounded by its own limits (size, digits, deadline): no thread needed.
    timeout = None
    pure, concurrency = True, "inline"  # microseconds: a worker would cost more than the call

    def __init__(self, limits: Limits = Limits()):
        self.limits = limits

    def run(self, expression: str) -> ToolResult:
        try:
            value = evaluate(expression, self.limits)
        except CalculatorError as err:
            return ToolResult.failure(f"calculator: {err}", calc_error=True)
        except (ArithmeticError, ValueError, RecursionError) as err:  # a limit this module missed: still the expression's fault
            return ToolResult.failure(f"calculator: the expression cannot be computed ({type(err).__name__}: {err})",
                                      calc_error=True)
        text = format_number(value)
        exact = "" if is_finite_decimal(value) else f" (exactly {value.numerator}/{value.denominator})"
        return ToolResult(
            f"{expression.strip()} = {text}{exact}",
            metadata={"value": text, "numerator": value.numerator, "denominator": value.denominator},
        )
