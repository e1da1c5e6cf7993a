"""The tools of SQLQuery: ``list_tables``, ``describe`` and ``sql`` over a read-only database."""

from __future__ import annotations

from toolgym.envs.errors import unknown_name_error
from toolgym.envs.sql.database import QueryError, ReadOnlyDatabase, format_result
from toolgym.envs.tool import Tool, ToolResult, string_arguments


class ListTablesTool(Tool):
    name = "list_tables"
    description = "List the tables of the database with their row counts (optionally only names containing a text)."
    parameters = string_arguments(optional=("like",), like="Only tables whose name contains this text; empty for all.")
    timeout = None  # bounded by the database's own step and time limits
    pure, concurrency = True, "process"  # read-only; CPU-bound SQLite

    def __init__(self, db: ReadOnlyDatabase):
        self.db = db

    def run(self, like: str = "") -> ToolResult:
        tables = {name: n for name, n in self.db.tables().items() if like.strip().lower() in name.lower()}
        if not tables:
            return ToolResult(f"No table name contains {like!r}. Call list_tables with an empty text to see all.")
        return ToolResult("\n".join(f"{name} ({n} rows)" for name, n in tables.items()), metadata={"tables": list(tables)})


class DescribeTool(Tool):
    name = "describe"
    description = "Show a table's columns (its CREATE TABLE statement), its row count and its first 3 rows."
    parameters = string_arguments(table="The table name, e.g. orders.")
    timeout = None
    pure, concurrency = True, "process"  # read-only; CPU-bound SQLite

    def __init__(self, db: ReadOnlyDatabase):
        self.db = db

    def run(self, table: str) -> ToolResult:
        tables = self.db.tables()
        name = table.strip().strip('"`[]')
        if name not in tables:
            return ToolResult.failure(f"describe: {unknown_name_error('table', name, tables)}")
        sample = format_result(self.db.query(f'SELECT * FROM "{name}" LIMIT 3')).rsplit("\n", 1)[0]
        content = f"{self.db.create_statement(name)}\n-- {tables[name]} rows; the first 3:\n{sample}"
        return ToolResult(content, metadata={"tables": [name]})


class SQLTool(Tool):
    name = "sql"
    description = "Run one read-only SQLite query (SELECT or WITH ... SELECT) and see the rows."
    parameters = string_arguments(query="One SQLite SELECT statement.")
    timeout = None
    pure, concurrency = True, "process"  # read-only; CPU-bound SQLite

    def __init__(self, db: ReadOnlyDatabase):
        self.db = db
        self.description = f"{SQLTool.description[:-1]} (at most {db.max_rows} are shown; use LIMIT or aggregates)."

    def run(self, query: str) -> ToolResult:
        try:
            result = self.db.query(query)
        except QueryError as err:
            return ToolResult.failure(f"sql: {err}", sql_error=True)
        return ToolResult(format_result(result), metadata={"tables": list(result.tables), "rows": len(result.rows),
                                                          "truncated": result.truncated})
