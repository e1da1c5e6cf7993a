"""Questions about the shop database, each with a gold SQL query whose result is the answer.

A template draws its parameters (a city, a category, a year...) from the database with the
episode's generator, writes the question and the gold query, and runs the query. Questions whose
answer would be ambiguous (a tie for "the most") or empty are redrawn.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from toolgym.envs.sql.database import STATUSES, ReadOnlyDatabase, _quote

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_YEARS = ("2022", "2023", "2024")


@dataclass(frozen=True)
class SQLQuestion:
    """A question, its gold query, the gold answer (one value, or a list for several rows) and
    the tables the gold query reads."""

    template: str
    question: str
    gold_sql: str
    answer: tuple  # the gold query's first column, one value per row
    tables: tuple[str, ...]

    @property
    def answer_text(self) -> str:
        return ", ".join(_text(v) for v in self.answer)


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- answer checking -----------------------------------------------------------------------------
_NUMBER = re.compile(r"^-?\$?\d[\d,]*(\.\d+)?$|^-?\$?\.\d+$")


def _normal(text: str) -> str:
    return " ".join(text.strip().strip(".'\"`").lower().split())


def _as_number(text: str) -> Fraction | None:
    cleaned = text.strip().rstrip(".")
    if not _NUMBER.match(cleaned):
        return None
    try:
        return Fraction(cleaned.replace("$", "").replace(",", ""))
    except ValueError:  # more than 4,300 digits: Python will not read it, and no gold value is that long
        return None


def _same(given: str, gold, tolerance: float) -> bool:
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        number = _as_number(given)
        return number is not None and abs(number - Fraction(gold)) <= Fraction(tolerance) * max(1, abs(Fraction(gold)))
    return _normal(given) == _normal(str(gold))


def check_answer(given: str, gold: Sequence, tolerance: float = 1e-6) -> bool:
    """True when ``given`` states the gold values: one value, or every row's value (any order,
    separated by commas, semicolons or new lines). Numbers compare up to ``tolerance``.

    >>> check_answer("$1,234.50", (1234.5,)), check_answer("Kettle;  robot", ("Robot", "Kettle"))
    (True, True)
    """
    if len(gold) == 1:
        return _same(given, gold[0], tolerance)
    parts = [p for p in re.split(r"[,;\n]|\band\b", given) if p.strip()]
    if len(parts) != len(gold):
        return False
    remaining = list(gold)
    for part in parts:
        match = next((g for g in remaining if _same(part, g, tolerance)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


# -- templates -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Draft:
    question: str
    sql: str
    rank_sql: str | None = None  # for "the most ...": the ranking values, to refuse ties
    top: int = 1


def _values(db: ReadOnlyDatabase, sql: str) -> list:
    return [row[0] for row in db.query(sql).rows]


def _pick(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(len(items)))]


def _customers_in_city(rng, db) -> _Draft:
    city = _pick(rng, _values(db, "SELECT DISTINCT city FROM customers ORDER BY city"))
    return _Draft(f"How many customers live in {city}?",
                  f"SELECT COUNT(*) FROM customers WHERE city = '{_quote(city)}'")


def _orders_of_customer(rng, db) -> _Draft:
    name = _pick(rng, _values(db, "SELECT name FROM customers ORDER BY id"))
    return _Draft(f"How many orders has the customer {name} placed (with any status)?",
                  "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id "
                  f"WHERE c.name = '{_quote(name)}'")


def _average_price(rng, db) -> _Draft:
    category = _pick(rng, _values(db, "SELECT DISTINCT category FROM products ORDER BY category"))
    return _Draft(f"What is the average price of the products in the {category} category, rounded to 2 decimals?",
                  f"SELECT ROUND(AVG(price), 2) FROM products WHERE category = '{_quote(category)}'")


def _most_expensive(rng, db) -> _Draft:
    category = _pick(rng, _values(db, "SELECT DISTINCT category FROM products ORDER BY category"))
    where = f"WHERE category = '{_quote(category)}' ORDER BY price DESC LIMIT 2"
    return _Draft(f"What is the name of the most expensive product in the {category} category?",
                  f"SELECT name FROM products {where.replace('LIMIT 2', 'LIMIT 1')}",
                  f"SELECT price FROM products {where}")


def _revenue(rng, db) -> _Draft:
    category = _pick(rng, _values(db, "SELECT DISTINCT category FROM products ORDER BY category"))
    year = _pick(rng, _YEARS)
    return _Draft(
        f"What was the total revenue (quantity times unit price) from {category} products in orders placed in "
        f"{year} that were not cancelled? Round to 2 decimals.",
        "SELECT ROUND(SUM(oi.quantity * oi.unit_price), 2) FROM order_items oi "
        "JOIN orders o ON o.id = oi.order_id JOIN products p ON p.id = oi.product_id "
        f"WHERE p.category = '{_quote(category)}' AND strftime('%Y', o.order_date) = '{year}' "
        "AND o.status != 'cancelled'")


def _top_customer(rng, db) -> _Draft:
    country = _pick(rng, _values(db, "SELECT DISTINCT country FROM customers ORDER BY country"))
    body = ("FROM customers c JOIN orders o ON o.customer_id = c.id "
            f"WHERE c.country = '{_quote(country)}' GROUP BY c.id ORDER BY COUNT(*) DESC")
    return _Draft(f"Which customer from {country} has placed the most orders? Give the name.",
                  f"SELECT c.name {body} LIMIT 1", f"SELECT COUNT(*) {body} LIMIT 2")


def _distinct_buyers(rng, db) -> _Draft:
    product = _pick(rng, _values(db, "SELECT name FROM products ORDER BY id"))
    return _Draft(f"How many different customers have ordered the product {product}?",
                  "SELECT COUNT(DISTINCT o.customer_id) FROM order_items oi JOIN orders o ON o.id = oi.order_id "
                  f"JOIN products p ON p.id = oi.product_id WHERE p.name = '{_quote(product)}'")


def _orders_in_month(rng, db) -> _Draft:
    year, month, status = _pick(rng, _YEARS), int(rng.integers(1, 13)), _pick(rng, STATUSES)
    return _Draft(f"How many orders placed in {_MONTHS[month - 1]} {year} have the status '{status}'?",
                  f"SELECT COUNT(*) FROM orders WHERE status = '{status}' "
                  f"AND strftime('%Y-%m', order_date) = '{year}-{month:02d}'")


def _best_sellers(rng, db) -> _Draft:
    year = _pick(rng, _YEARS)
    body = ("FROM order_items oi JOIN orders o ON o.id = oi.order_id JOIN products p ON p.id = oi.product_id "
            f"WHERE strftime('%Y', o.order_date) = '{year}' GROUP BY p.id ORDER BY SUM(oi.quantity) DESC")
    return _Draft(f"Which 3 products sold the most units (total quantity over all orders) in {year}? "
                  "List their names.",
                  f"SELECT p.name {body} LIMIT 3", f"SELECT SUM(oi.quantity) {body} LIMIT 4", top=3)


def _biggest_city(rng, db) -> _Draft:
    country = _pick(rng, _values(db, "SELECT DISTINCT country FROM customers ORDER BY country"))
    body = f"FROM customers WHERE country = '{_quote(country)}' GROUP BY city ORDER BY COUNT(*) DESC"
    return _Draft(f"Which city in {country} has the most customers?",
                  f"SELECT city {body} LIMIT 1", f"SELECT COUNT(*) {body} LIMIT 2")


TEMPLATES: dict[str, Callable[[np.random.Generator, ReadOnlyDatabase], _Draft]] = {
    "customers_in_city": _customers_in_city, "orders_of_customer": _orders_of_customer,
    "average_price": _average_price, "most_expensive": _most_expensive, "revenue": _revenue,
    "top_customer": _top_customer, "distinct_buyers": _distinct_buyers, "orders_in_month": _orders_in_month,
    "best_sellers": _best_sellers, "biggest_city": _biggest_city,
}


def generate_question(rng: np.random.Generator, db: ReadOnlyDatabase,
                      templates: Sequence[str] = tuple(TEMPLATES), tries: int = 50) -> SQLQuestion:
    """A question drawn with ``rng`` whose gold answer is unambiguous and not empty."""
    for _ in range(tries):
        name = templates[int(rng.integers(len(templates)))]
        draft = TEMPLATES[name](rng, db)
        if draft.rank_sql is not None:
            ranks = _values(db, draft.rank_sql)
            if len(ranks) < draft.top or (len(ranks) > draft.top and ranks[draft.top - 1] == ranks[draft.top]):
                continue  # a tie: "the most" would have several right answers
        result = db.query(draft.sql)
        answer = tuple(row[0] for row in result.rows)
        if not answer or any(v is None for v in answer):
            continue
        return SQLQuestion(name, draft.question, draft.sql, answer, result.tables)
    raise RuntimeError(f"no unambiguous question from templates {list(templates)} in {tries} tries; "
                       "the database is too small for them")
