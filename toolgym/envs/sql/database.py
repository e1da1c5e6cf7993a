"""The SQLQuery database: generated offline from a seed, cached on disk, opened read-only.

``build_database(config)`` writes a small shop (customers, products, orders, order items; a few
thousand rows) deterministically from ``config.seed`` and caches it under
``$TOOLGYM_CACHE/sql/`` by a hash of the config and the generator version, so every process and
every vector env shares one file.

``ReadOnlyDatabase`` runs an agent's query with several layers of defence: the file is opened
with ``mode=ro``, ``PRAGMA query_only`` is on, an authorizer denies everything but reading
(``SELECT``, reads of columns, recursive CTEs, and the functions of ``ALLOWED_FUNCTIONS``), only
one statement runs, results stop after ``max_rows`` rows, a progress handler stops a query after
``max_steps`` virtual machine instructions (deterministic), and a watchdog thread calls
``Connection.interrupt()`` after ``max_seconds`` of wall-clock time.

The watchdog and the step count act between VM instructions, so no single instruction may be
long: functions that build a string of a size given as an argument (``printf('%.*c', 2e9, 'x')``
runs for a minute inside one instruction) are not allowed, strings and blobs are limited to
``max_string_bytes`` (which bounds the quadratic ``instr``/``replace`` on long strings), and
LIKE/GLOB patterns to ``max_pattern_chars``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from toolgym.envs.retrieval.cache import default_cache_dir

logger = logging.getLogger(__name__)

# Bump when the generator changes, so cached databases from an older version are not used.
GENERATOR_VERSION = "1"

SCHEMA = """
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    signup_date TEXT NOT NULL  -- YYYY-MM-DD
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL,
    price REAL NOT NULL  -- dollars
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    order_date TEXT NOT NULL,  -- YYYY-MM-DD
    status TEXT NOT NULL  -- delivered, shipped, cancelled or returned
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL,
    unit_price REAL NOT NULL  -- dollars, the price paid per unit
);
"""

_FIRST = ("Ada", "Bruno", "Carmen", "Dmitri", "Elena", "Felix", "Gita", "Hugo", "Ines", "Jonas", "Keiko", "Lars",
          "Mira", "Nadia", "Oscar", "Paula", "Rafael", "Sofia", "Tomas", "Ulla", "Vera", "Wiktor", "Xenia", "Yara",
          "Zane", "Amir", "Bea", "Cyril", "Dalia", "Emil", "Freya", "Goran", "Hana", "Ivo", "Jana", "Kofi",
          "Lina", "Marek", "Nora", "Omar")
_LAST = ("Abara", "Berg", "Costa", "Dvorak", "Eriksen", "Fontaine", "Garcia", "Haddad", "Ibsen", "Jovanovic",
         "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quispe", "Rossi", "Schmidt", "Tanaka",
         "Umar", "Varga", "Weber", "Xu", "Yilmaz", "Zhang", "Alves", "Brandt", "Chen", "Diaz", "Engel", "Fischer",
         "Gallo", "Horvat", "Ito", "Jensen", "Keller", "Lopez", "Meyer", "Nakamura")
_CITIES = (("Lisbon", "Portugal"), ("Porto", "Portugal"), ("Madrid", "Spain"), ("Seville", "Spain"),
           ("Valencia", "Spain"), ("Lyon", "France"), ("Paris", "France"), ("Nantes", "France"),
           ("Berlin", "Germany"), ("Munich", "Germany"), ("Hamburg", "Germany"), ("Cologne", "Germany"),
           ("Milan", "Italy"), ("Turin", "Italy"), ("Naples", "Italy"), ("Krakow", "Poland"),
           ("Gdansk", "Poland"), ("Oslo", "Norway"), ("Bergen", "Norway"), ("Vienna", "Austria"))
_CATEGORIES = {
    "Books": ("Atlas", "Cookbook", "Novel", "Journal", "Guide", "Anthology", "Dictionary"),
    "Electronics": ("Headphones", "Speaker", "Charger", "Keyboard", "Monitor", "Router", "Webcam"),
    "Garden": ("Rake", "Hose", "Planter", "Shears", "Trowel", "Sprinkler", "Lantern"),
    "Kitchen": ("Kettle", "Skillet", "Blender", "Teapot", "Grater", "Whisk", "Toaster"),
    "Sports": ("Racket", "Helmet", "Yoga Mat", "Dumbbell", "Backpack", "Bottle", "Jump Rope"),
    "Toys": ("Puzzle", "Robot", "Kite", "Yo-Yo", "Train Set", "Plush Bear", "Board Game"),
}
_ADJECTIVES = ("Classic", "Compact", "Deluxe", "Eco", "Golden", "Handy", "Nordic", "Pocket", "Pro", "Retro",
               "Silver", "Smart", "Sturdy", "Swift", "Urban", "Vivid")
_PRICE_RANGE = {"Books": (5, 60), "Electronics": (15, 600), "Garden": (4, 150), "Kitchen": (6, 250),
                "Sports": (5, 300), "Toys": (4, 120)}
STATUSES = ("delivered", "shipped", "cancelled", "returned")
_STATUS_P = (0.72, 0.12, 0.1, 0.06)
FIRST_DAY, LAST_DAY = date(2022, 1, 1), date(2024, 12, 31)


@dataclass(frozen=True)
class DatabaseConfig:
    """What the generated shop looks like; the same config gives the same file, byte for byte."""

    seed: int = 0  # the generator's seed
    n_customers: int = 1200  # rows of customers (at most 1600: unique first x last names)
    n_products: int = 240  # rows of products (at most 672: unique adjective x item names)
    n_orders: int = 4000  # rows of orders; order_items has 1-4 rows per order

    def __post_init__(self) -> None:
        limits = {"n_customers": len(_FIRST) * len(_LAST), "n_orders": 10**7,
                  "n_products": len(_ADJECTIVES) * sum(len(v) for v in _CATEGORIES.values())}
        for name, high in limits.items():
            value = getattr(self, name)
            if not 1 <= value <= high:
                raise ValueError(f"DatabaseConfig.{name} must be in [1, {high}], got {value!r}.")

    def key(self) -> str:
        """The cache key: a hash of the generator version and every field."""
        payload = json.dumps({"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _rows(config: DatabaseConfig) -> dict[str, list[tuple]]:
    rng = np.random.default_rng(config.seed)
    names = rng.choice(len(_FIRST) * len(_LAST), config.n_customers, replace=False)
    span = (LAST_DAY - FIRST_DAY).days
    customers = []
    for i, code in enumerate(names, start=1):
        city, country = _CITIES[int(rng.integers(len(_CITIES)))]
        signup = FIRST_DAY + timedelta(days=int(rng.integers(span // 2)))
        customers.append((i, f"{_FIRST[code // len(_LAST)]} {_LAST[code % len(_LAST)]}", city, country, signup.isoformat()))

    catalogue = [(adj, cat, item) for cat, items in _CATEGORIES.items() for item in items for adj in _ADJECTIVES]
    products = []
    for i, code in enumerate(rng.choice(len(catalogue), config.n_products, replace=False), start=1):
        adj, cat, item = catalogue[int(code)]
        low, high = _PRICE_RANGE[cat]
        cents = int(rng.integers(low * 100, high * 100)) // 5 * 5 + 4  # prices end in 4 or 9 cents
        products.append((i, f"{adj} {item}", cat, cents / 100))

    orders, items = [], []
    for i in range(1, config.n_orders + 1):
        customer = customers[int(rng.integers(len(customers)))]
        start = date.fromisoformat(customer[4])
        day = start + timedelta(days=int(rng.integers((LAST_DAY - start).days + 1)))
        status = STATUSES[int(rng.choice(len(STATUSES), p=_STATUS_P))]
        orders.append((i, customer[0], day.isoformat(), status))
        for product_index in rng.choice(len(products), int(rng.integers(1, 5)), replace=False):
            product = products[int(product_index)]
            discount = 0.9 if rng.random() < 0.15 else 1.0  # a sale price now and then
            items.append((len(items) + 1, i, product[0], int(rng.integers(1, 6)), round(product[3] * discount, 2)))
    return {"customers": customers, "products": products, "orders": orders, "order_items": items}


def _write(path: Path, config: DatabaseConfig) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        for table, rows in _rows(config).items():
            marks = ", ".join("?" * len(rows[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        conn.execute("CREATE INDEX idx_orders_customer ON orders(customer_id)")
        conn.execute("CREATE INDEX idx_items_order ON order_items(order_id)")
        conn.execute("CREATE INDEX idx_items_product ON order_items(product_id)")
        conn.commit()
        conn.execute("VACUUM")
    finally:
        conn.close()


def database_path(config: DatabaseConfig = DatabaseConfig(), cache_dir: str | Path | None = None) -> Path:
    """The cached database of ``config``, built on first use (atomically: a crash never leaves half a file)."""
    directory = Path(cache_dir or default_cache_dir()) / "sql"
    path = directory / f"shop-{config.key()}.sqlite"
    if path.exists():
        try:
            with sqlite3.connect(path.as_uri() + "?mode=ro", uri=True) as conn:
                conn.execute("SELECT COUNT(*) FROM order_items").fetchone()
            return path
        except sqlite3.Error as err:
            logger.warning("rebuilding the database at %s: it is unusable (%s)", path, err)
    directory.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".sqlite")
    os.close(handle)
    try:
        os.unlink(tmp)
        _write(Path(tmp), config)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


class QueryError(Exception):
    """A query that was refused, failed, or was stopped; the message is meant for the agent."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    rows: tuple[tuple, ...]
    truncated: bool  # more rows existed than ``max_rows``
    tables: tuple[str, ...]  # the tables the query read, sorted


# Authorizer action codes that reading needs; everything else is denied.
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, getattr(sqlite3, "SQLITE_RECURSIVE", 33)}
# The functions a query may call: deterministic (twin rollouts must agree), bounded in time by the
# string limits, and returning values only. Not: random(), load_extension(), fts3_tokenizer()
# (returns a pointer), printf()/format() (a width argument builds a string of any size in one step).
ALLOWED_FUNCTIONS = frozenset({
    # aggregates and window functions
    "avg", "count", "group_concat", "string_agg", "max", "min", "sum", "total",
    "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
    "first_value", "last_value", "nth_value",
    # scalars
    "abs", "coalesce", "ifnull", "iif", "nullif", "typeof", "likely", "unlikely", "likelihood",
    "length", "octet_length", "lower", "upper", "ltrim", "rtrim", "trim", "substr", "substring", "instr",
    "replace", "concat", "concat_ws", "char", "unicode", "hex", "quote", "like", "glob",
    "round", "sign", "ceil", "ceiling", "floor", "trunc", "sqrt", "pow", "power", "mod", "exp", "ln", "log",
    "log2", "log10", "pi",
    "date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff",
})
_FUNCTION_HINTS = {"printf": "use round(x, 2) or ||", "format": "use round(x, 2) or ||"}
# The authorizer's action codes by name (sqlite3 exports them beside error codes of equal values).
_ACTION_NAMES = {
    code: name.replace("_", " ")
    for code, name in enumerate((
        "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER",
        "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "DELETE", "DROP_INDEX", "DROP_TABLE",
        "DROP_TEMP_INDEX", "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW", "DROP_TRIGGER", "DROP_VIEW",
        "INSERT", "PRAGMA", "READ", "SELECT", "TRANSACTION", "UPDATE", "ATTACH", "DETACH", "ALTER_TABLE",
        "REINDEX", "ANALYZE", "CREATE_VTABLE", "DROP_VTABLE", "FUNCTION", "SAVEPOINT", "RECURSIVE",
    ), start=1)
}


class _Watchdog:
    """One daemon thread that runs an action when its deadline passes, for every database of the
    process (a thread per query costs about 1 ms on a busy machine; this costs microseconds).
    Actions run under the lock, so after ``disarm`` returns, its action can no longer run."""

    def __init__(self):
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, Any]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, action) -> int:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sql-watchdog", daemon=True)
                self._thread.start()
            token = next(self._tokens)
            self._due[token] = (time.monotonic() + seconds, action)
            self._cond.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._due.pop(token, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for token in [t for t, (deadline, _) in self._due.items() if deadline <= now]:
                    try:
                        self._due.pop(token)[1]()
                    except Exception:  # noqa: BLE001 - e.g. a connection closed meanwhile; the thread must live on
                        logger.exception("the SQL watchdog's action failed")
                nearest = min((deadline for deadline, _ in self._due.values()), default=None)
                self._cond.wait(None if nearest is None else nearest - now)


_WATCHDOG = _Watchdog()


def _new_watchdog_after_fork() -> None:
    # A forked child (AsyncVectorEnv workers) has no watchdog thread, and the lock may be held.
    global _WATCHDOG
    _WATCHDOG = _Watchdog()


os.register_at_fork(after_in_child=_new_watchdog_after_fork)


class ReadOnlyDatabase:
    """A SQLite file that agents may query but never change. Picklable (the connection reopens)."""

    def __init__(self, path: str | Path, *, max_rows: int = 50, max_cell_chars: int = 200,
                 max_steps: int = 20_000_000, max_seconds: float = 2.0, max_string_bytes: int = 50_000,
                 max_pattern_chars: int = 200):
        limits = {"max_rows": max_rows, "max_cell_chars": max_cell_chars, "max_steps": max_steps,
                  "max_seconds": max_seconds, "max_string_bytes": max_string_bytes,
                  "max_pattern_chars": max_pattern_chars}
        for name, value in limits.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}.")
        self.path = Path(path)
        self.max_rows, self.max_cell_chars = max_rows, max_cell_chars
        self.max_steps, self.max_seconds = max_steps, max_seconds
        self.max_string_bytes, self.max_pattern_chars = max_string_bytes, max_pattern_chars
        self._conn: sqlite3.Connection | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_conn": None}

    _PROGRESS_EVERY = 1000  # VM instructions between progress-handler calls

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # No statement cache: the authorizer (which also records the tables read) runs when a
            # statement is prepared, so every query must be prepared afresh.
            conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False,
                                   cached_statements=0)
            conn.execute("PRAGMA query_only = ON")
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, self.max_string_bytes)
            conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, self.max_pattern_chars)
            conn.set_authorizer(self._authorize)
            conn.set_progress_handler(self._progress, self._PROGRESS_EVERY)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- the guards -----------------------------------------------------------------------------
    def _authorize(self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
        if action == sqlite3.SQLITE_READ and arg1:
            self._tables.add(arg1)
        if action == sqlite3.SQLITE_FUNCTION:
            if (arg2 or "").lower() in ALLOWED_FUNCTIONS:
                return sqlite3.SQLITE_OK
            hint = _FUNCTION_HINTS.get((arg2 or "").lower(), "the allowed ones are " + ", ".join(sorted(ALLOWED_FUNCTIONS)))
            self._denied = self._denied or f"the function {arg2}() is not allowed; {hint}"
            return sqlite3.SQLITE_DENY
        if action in _ALLOWED:
            return sqlite3.SQLITE_OK
        # The first denial names the statement (DROP TABLE x); later ones are its consequences.
        what = _ACTION_NAMES.get(action, f"action {action}")
        target = f" {arg1}" if arg1 and action not in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT) else ""
        self._denied = self._denied or f"{what}{target} is not allowed: only read-only SELECT queries run"
        return sqlite3.SQLITE_DENY

    def _interrupt(self, conn: sqlite3.Connection) -> None:
        self._stopped = self._stopped or self._time_limit_message()
        conn.interrupt()

    def _time_limit_message(self) -> str:
        return f"the query was stopped after {self.max_seconds:g} s (the time limit); make it cheaper"

    def _progress(self) -> int:
        self._steps += self._PROGRESS_EVERY
        if self._steps > self.max_steps:
            self._stopped = f"the query was stopped after {self.max_steps:,} steps (the limit); make it cheaper"
            return 1
        if time.monotonic() > self._deadline:
            self._stopped = self._time_limit_message()
            return 1
        return 0

    # -- running ----------------------------------------------------------------------------------
    def query(self, sql: str) -> QueryResult:
        """Run one read-only statement; raise ``QueryError`` with a message for the agent."""
        if not sql.strip():
            raise QueryError("the query is empty; write one SELECT statement")
        conn = self._connection()
        self._tables: set[str] = set()
        self._denied = self._stopped = None
        self._steps, self._deadline = 0, time.monotonic() + self.max_seconds
        # The progress handler runs only every _PROGRESS_EVERY instructions; the watchdog stops a
        # query whose instructions are slow, from another thread, at the next instruction.
        token = _WATCHDOG.arm(self.max_seconds, lambda: self._interrupt(conn))
        try:
            cursor = conn.execute(sql)
            if cursor.description is None:
                raise QueryError("the statement returned no rows; only SELECT (or WITH ... SELECT) queries run")
            rows = cursor.fetchmany(self.max_rows + 1)
            columns = tuple(d[0] for d in cursor.description)
            cursor.close()
        except sqlite3.ProgrammingError as err:
            if "one statement" in str(err):
                raise QueryError("only one statement may run per call; remove everything after the first ';'") from None
            raise QueryError(f"{err}") from None
        except (sqlite3.Error, OverflowError, MemoryError) as err:
            if self._denied:
                verb = _first_keyword(sql)
                if verb not in ("SELECT", "WITH", "VALUES", ""):
                    raise QueryError(f"{verb} statements are not allowed: only read-only SELECT queries run") from None
                raise QueryError(self._denied) from None
            raise QueryError(self._stopped or self._limit_message(err) or f"{type(err).__name__}: {err}") from None
        finally:
            _WATCHDOG.disarm(token)
            if conn.in_transaction:  # never the case for reads; keep the connection clean anyway
                conn.rollback()
        truncated = len(rows) > self.max_rows
        cells = tuple(tuple(self._cell(v) for v in row) for row in rows[: self.max_rows])
        tables = tuple(sorted(t for t in self._tables if not t.startswith("sqlite_")))
        return QueryResult(columns, cells, truncated, tables)

    def _limit_message(self, err: Exception) -> str | None:
        """SQLite's words for its length limits, said with the limit and the fix."""
        if "string or blob too big" in str(err):
            return (f"a string or blob in the query would be longer than {self.max_string_bytes:,} bytes "
                    "(the limit); work on shorter values")
        if "pattern too complex" in str(err):
            return f"a LIKE or GLOB pattern is longer than {self.max_pattern_chars} characters (the limit)"
        return None

    def _cell(self, value: Any) -> Any:
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        if isinstance(value, str) and len(value) > self.max_cell_chars:
            return value[: self.max_cell_chars] + f"...[{len(value) - self.max_cell_chars} more characters]"
        return value

    def tables(self) -> dict[str, int]:
        """Table name -> row count."""
        names = [r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").rows]
        return {name: self.query(f'SELECT COUNT(*) FROM "{name}"').rows[0][0] for name in names}

    def create_statement(self, table: str) -> str | None:
        rows = self.query(f"SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '{_quote(table)}'").rows
        return rows[0][0] if rows else None


_COMMENT = re.compile(r"\s*(--[^\n]*(\n|$)|/\*.*?(\*/|$))", re.DOTALL)


def _first_keyword(sql: str) -> str:
    """The statement's first keyword (``DROP``), after whitespace and comments."""
    position = 0
    while match := _COMMENT.match(sql, position):
        if match.end() == position:
            break
        position = match.end()
    word = re.match(r"\s*([A-Za-z]+)", sql[position:])
    return word.group(1).upper() if word else ""


def _quote(text: str) -> str:
    """``text`` for a single-quoted SQL literal."""
    return text.replace("'", "''")


def format_result(result: QueryResult) -> str:
    """Rows as a plain table (``a | b``), with a note when rows were cut."""
    if not result.rows:
        return " | ".join(result.columns) + "\n(no rows)"
    lines = [" | ".join(result.columns)]
    lines += [" | ".join("NULL" if v is None else str(v) for v in row) for row in result.rows]
    if result.truncated:
        lines.append(f"[only the first {len(result.rows)} rows are shown; add LIMIT or aggregate]")
    else:
        lines.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(lines)


@lru_cache(maxsize=8)
def shared_database(config: DatabaseConfig) -> Path:
    """The database file of ``config``, built once per process."""
    return database_path(config)
