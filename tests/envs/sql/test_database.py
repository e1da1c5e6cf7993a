"""The SQLQuery database: deterministic and cached, and nothing an agent sends can change it."""

import hashlib
import pickle
import sqlite3
import time

import pytest

from toolgym.envs.sql.database import (
    DatabaseConfig,
    QueryError,
    ReadOnlyDatabase,
    database_path,
    format_result,
)
from toolgym.envs.sql.tools import DescribeTool, ListTablesTool, SQLTool

SMALL = DatabaseConfig(seed=1, n_customers=100, n_products=30, n_orders=200)


def checksum(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def db_path(tmp_path_factory):
    return database_path(SMALL, tmp_path_factory.mktemp("sql"))


def test_same_config_gives_the_same_database_and_the_cache_is_reused(tmp_path, db_path):
    again = database_path(SMALL, tmp_path)
    assert checksum(again) == checksum(db_path)
    mtime = again.stat().st_mtime_ns
    assert database_path(SMALL, tmp_path) == again and again.stat().st_mtime_ns == mtime
    other = database_path(DatabaseConfig(seed=2, n_customers=100, n_products=30, n_orders=200), tmp_path)
    assert other != again and checksum(other) != checksum(again)


def test_a_corrupt_cache_file_is_rebuilt(tmp_path, db_path):
    path = database_path(SMALL, tmp_path)
    path.write_bytes(b"not a database")
    assert checksum(database_path(SMALL, tmp_path)) == checksum(db_path)


def test_default_size_has_thousands_of_related_rows(tmp_path):
    db = ReadOnlyDatabase(database_path(DatabaseConfig(), tmp_path))
    counts = db.tables()
    assert counts["customers"] == 1200 and counts["orders"] == 4000 and counts["order_items"] > 8000
    orphans = db.query("SELECT COUNT(*) FROM order_items oi LEFT JOIN orders o ON o.id = oi.order_id WHERE o.id IS NULL")
    assert orphans.rows == ((0,),)


def test_config_is_validated():
    with pytest.raises(ValueError, match="n_customers must be in"):
        DatabaseConfig(n_customers=10**6)


# Each bad input, and a fragment of the error the agent sees.
BAD_QUERIES = {
    "drop": ("DROP TABLE customers", "DROP statements are not allowed"),
    "delete": ("DELETE FROM orders", "DELETE statements are not allowed"),
    "update": ("UPDATE products SET price = 0", "UPDATE statements are not allowed"),
    "insert": ("INSERT INTO customers VALUES (9999, 'x', 'y', 'z', '2020-01-01')", "INSERT statements are not allowed"),
    "cte write": ("WITH x AS (SELECT 1) DELETE FROM orders", "DELETE orders is not allowed"),
    "create": ("CREATE TABLE t (x)", "CREATE statements are not allowed"),
    "temp table": ("CREATE TEMP TABLE t (x)", "CREATE statements are not allowed"),
    "alter": ("ALTER TABLE orders ADD COLUMN x", "ALTER statements are not allowed"),
    "attach": ("ATTACH DATABASE '/tmp/toolgym-evil.db' AS evil", "ATTACH statements are not allowed"),
    "attach memory": ("ATTACH ':memory:' AS m", "ATTACH statements are not allowed"),
    "pragma write": ("PRAGMA writable_schema = 1", "PRAGMA statements are not allowed"),
    "pragma query_only off": ("PRAGMA query_only = 0", "PRAGMA statements are not allowed"),
    "vacuum into": ("VACUUM INTO '/tmp/toolgym-copy.db'", "VACUUM statements are not allowed"),
    "transaction": ("BEGIN", "BEGIN statements are not allowed"),
    "stacked injection": ("SELECT 1; DROP TABLE orders", "only one statement may run per call"),
    "comment then write": ("/* hi */ -- there\n DELETE FROM orders", "DELETE statements are not allowed"),
    "random": ("SELECT random()", "random() is not allowed"),
    # A width builds a 2 GB string inside one VM instruction, where no time limit can act.
    "printf width bomb": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<4) "
        "SELECT length(printf('%.*c',2000000000+x,'x')) FROM c",
        "printf() is not allowed; use round(x, 2)",
    ),
    "fts3 tokenizer pointer": ("SELECT fts3_tokenizer('simple')", "fts3_tokenizer() is not allowed"),
    "zeroblob": ("SELECT length(zeroblob(10))", "zeroblob() is not allowed"),
    "doubling string": (
        "WITH RECURSIVE s(a, n) AS (SELECT 'a', 0 UNION ALL SELECT a || a, n + 1 FROM s WHERE n < 20) "
        "SELECT length(a) FROM s",
        "would be longer than 50,000 bytes (the limit)",
    ),
    "long like pattern": ("SELECT name LIKE '" + "%a" * 200 + "' FROM customers", "pattern is longer than 200"),
    "load extension": ("SELECT load_extension('/tmp/x.so')", "load_extension() is not allowed"),
    "endless recursive cte": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c",
        "the query was stopped after",
    ),
    "cross join count": ("SELECT COUNT(*) FROM order_items a, order_items b, order_items c", "the query was stopped after"),
    "syntax": ("SELEC * FROM orders", "syntax error"),
    "no such table": ("SELECT * FROM nope", "no such table: nope"),
    "empty": ("   ", "the query is empty"),
    "comment only": ("-- nothing", "only SELECT"),
}


@pytest.mark.parametrize("name", list(BAD_QUERIES))
def test_bad_queries_are_refused_and_the_file_is_unchanged(name, db_path):
    query, message = BAD_QUERIES[name]
    before = checksum(db_path)
    db = ReadOnlyDatabase(db_path, max_steps=2_000_000)
    with pytest.raises(QueryError) as err:
        db.query(query)
    assert message in str(err.value)
    result = SQLTool(db)({"query": query})
    assert not result.ok and result.metadata["sql_error"] and message in result.content
    # The connection still works, and nothing changed on disk.
    assert db.query("SELECT COUNT(*) FROM customers").rows == ((100,),)
    assert checksum(db_path) == before


def test_huge_and_endless_results_are_cut_to_max_rows(db_path):
    db = ReadOnlyDatabase(db_path, max_rows=7)
    endless = db.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c")
    assert endless.truncated and [r[0] for r in endless.rows] == list(range(1, 8))
    cross = db.query("SELECT * FROM order_items a, order_items b")
    assert cross.truncated and len(cross.rows) == 7
    assert "only the first 7 rows are shown" in format_result(cross)
    long_cell = db.query("SELECT group_concat(name, '') FROM customers")
    assert long_cell.rows[0][0].endswith(f"...[{db.query('SELECT SUM(length(name)) FROM customers').rows[0][0] - 200} more characters]")


def test_injection_through_tool_arguments_is_harmless(db_path):
    before = checksum(db_path)
    db = ReadOnlyDatabase(db_path)
    result = DescribeTool(db)({"table": "orders; DROP TABLE orders"})
    assert not result.ok and "Unknown table" in result.error
    result = SQLTool(db)({"query": "SELECT * FROM customers WHERE name = '' OR 1=1 --'"})
    assert result.ok  # reads everything, changes nothing
    assert ListTablesTool(db)({"like": "'; DROP TABLE orders; --"}).content.startswith("No table name contains")
    assert checksum(db_path) == before


def test_the_file_itself_is_opened_read_only(db_path):
    db = ReadOnlyDatabase(db_path)
    conn = db._connection()
    conn.set_authorizer(None)  # even past the authorizer and query_only, mode=ro refuses writes
    conn.execute("PRAGMA query_only = 0")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM orders")


def test_tables_read_are_recorded_on_every_run(db_path):
    db = ReadOnlyDatabase(db_path)
    query = "SELECT COUNT(*) FROM orders o JOIN customers c ON c.id = o.customer_id"
    assert db.query(query).tables == ("customers", "orders")
    assert db.query(query).tables == ("customers", "orders")  # no statement cache hides the second run


def test_describe_and_list_tables(db_path):
    db = ReadOnlyDatabase(db_path)
    listing = ListTablesTool(db)({}).content
    assert listing.splitlines() == ["customers (100 rows)", f"order_items ({db.tables()['order_items']} rows)",
                                    "orders (200 rows)", "products (30 rows)"]
    described = DescribeTool(db)({"table": "orders"})
    assert "CREATE TABLE orders" in described.content and "200 rows" in described.content
    assert "Did you mean 'orders'" in DescribeTool(db)({"table": "order"}).error


def test_pickles_without_its_connection(db_path):
    db = ReadOnlyDatabase(db_path)
    db.query("SELECT 1")
    clone = pickle.loads(pickle.dumps(db))
    assert clone.query("SELECT COUNT(*) FROM orders").rows == ((200,),)


# 'a' * 49,990 built within the string limit, and 1,000 rows that each run a slow function on it.
_LONG = ("WITH RECURSIVE s(a, n) AS (SELECT 'a', 0 UNION ALL SELECT a || a, n + 1 FROM s WHERE n < 15), "
         "t(a) AS (SELECT substr(a, 1, 24995) || substr(a, 1, 24995) FROM s WHERE n = 15), "
         "c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) ")


@pytest.mark.parametrize("expression", [
    "instr(a, substr(a, 1, 25000) || 'b')",
    "a LIKE '%' || substr(a, 1, 190) || 'b'",
    "length(replace(a, substr(a, 1, 20000) || 'x', 'bb'))",
])
def test_slow_functions_on_long_strings_are_stopped_by_the_time_limit(expression, db_path):
    db = ReadOnlyDatabase(db_path, max_seconds=0.3)
    with pytest.raises(QueryError, match=r"stopped after 0.3 s \(the time limit\)"):
        db.query(f"{_LONG}SELECT SUM({expression}) FROM t, c")
    assert db.query("SELECT COUNT(*) FROM customers").rows == ((100,),)


def test_the_watchdog_stops_a_query_the_progress_handler_never_sees(db_path):
    db = ReadOnlyDatabase(db_path, max_seconds=0.3)
    db._connection().set_progress_handler(None, 0)  # only the wall-clock watchdog is left
    with pytest.raises(QueryError, match="stopped after 0.3 s"):
        db.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c")
    # A later query is not hit by a stale interrupt.
    assert db.query("SELECT COUNT(*) FROM orders").rows == ((200,),)


def test_functions_are_an_allowlist_that_covers_what_questions_need(db_path):
    db = ReadOnlyDatabase(db_path)
    row = db.query("SELECT round(avg(price), 2) > 0, strftime('%Y', '2024-03-01'), upper(substr('abc', 2)), "
                   "coalesce(NULL, 1), instr('hello', 'l'), rank() OVER (ORDER BY 1) FROM products").rows[0]
    assert row == (1, "2024", "BC", 1, 3, 1)
    with pytest.raises(QueryError, match="the allowed ones are abs, avg"):
        db.query("SELECT sqlite_version()")


def test_the_watchdog_runs_only_actions_still_armed_when_due():
    from toolgym.envs.sql.database import _Watchdog

    watchdog, fired = _Watchdog(), []
    watchdog.arm(0.01, lambda: 1 / 0)  # a failing action does not stop the thread
    late = watchdog.arm(0.2, lambda: fired.append("late"))
    soon = watchdog.arm(0.05, lambda: fired.append("soon"))
    cancelled = watchdog.arm(0.1, lambda: fired.append("cancelled"))
    watchdog.disarm(cancelled)
    deadline = time.monotonic() + 10
    while len(fired) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    watchdog.disarm(late)
    watchdog.disarm(soon)  # already run: a no-op
    assert fired == ["soon", "late"]
