"""SQLQuery: answer questions about a SQLite database by exploring it with read-only queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from toolgym.envs.errors import check_argument_types, unknown_name_error
from toolgym.envs.formats import ToolCall
from toolgym.envs.result import EpisodeResult
from toolgym.envs.sql.database import DatabaseConfig, ReadOnlyDatabase, shared_database
from toolgym.envs.sql.questions import TEMPLATES, SQLQuestion, check_answer, generate_question
from toolgym.envs.sql.tools import DescribeTool, ListTablesTool, SQLTool
from toolgym.envs.tool import AnswerTool, Tool, ToolResult
from toolgym.envs.tool_env import RewardTerms, ToolEnv


class SQLQueryEnv(ToolEnv):
    """Answer a question about a shop's SQLite database by querying it, then ``answer``.

    ## Description
    The database is generated offline from a seed and cached on disk (``$TOOLGYM_CACHE/sql``):
    ``customers`` (1,200), ``products`` (240), ``orders`` (4,000) and ``order_items`` (about
    10,000 rows). Each episode draws a question from ten templates (counts, averages, revenue
    with joins over three tables, "which ... the most", top-3 lists), each with a gold SQL query;
    questions with ties or empty answers are redrawn. The agent explores the schema with
    ``list_tables`` and ``describe``, runs ``sql`` queries, and answers.

    Queries are sandboxed: the file is opened read-only (``mode=ro``), ``PRAGMA query_only`` is on,
    an authorizer allows only reading (no INSERT/UPDATE/DELETE/DDL, ATTACH, PRAGMA,
    transactions or ``random()``), one statement runs per call, at most ``max_rows`` rows come
    back, and a query is stopped after ``max_steps`` SQLite instructions or, by a watchdog thread,
    after ``max_seconds`` of wall-clock time. Only an allowlist of functions runs
    (``toolgym.envs.sql.database.ALLOWED_FUNCTIONS``: aggregates, window, string, math and date
    functions; not ``printf``, ``random`` or ``load_extension``), and strings the query builds are
    limited to ``max_string_bytes``. Refusals come back as errors that say why.

    ## Action Space
    Any string: the assistant's message. ``hermes``:
    ``<tool_call>{"name": "sql", "arguments": {"query": "SELECT COUNT(*) FROM orders"}}</tool_call>``,
    ``{"name": "describe", "arguments": {"table": "orders"}}``, ``{"name": "list_tables",
    "arguments": {}}`` and ``{"name": "answer", "arguments": {"answer": "42"}}``; ``tags``:
    ``<sql>SELECT ...</sql>``, ``<describe>orders</describe>``, ``<list_tables></list_tables>``,
    ``<answer>42</answer>``.

    ## Observation Space
    ``Messages``: the system prompt, the question, then the assistant's messages and the results.

    ## Rewards
    The step reward is the weighted sum of named terms, reported in ``info["reward_terms"]``:

    | term           | raw value                                                   | default weight |
    |----------------|-------------------------------------------------------------|----------------|
    | ``answer``     | 1 when the answer equals the gold query's result             | 1.0            |
    | ``table``      | tables the gold query reads, touched for the first time      | 0.05           |
    | ``sql_error``  | queries refused or failed (syntax, writes, limits)           | -0.05          |
    | ``valid_call`` | tool calls that ran                                          | 0.02           |
    | ``format``     | malformed calls, unknown tools, bad arguments                | -0.1           |

    A one-value answer matches a number up to ``tolerance`` or a name case-insensitively; a
    several-row answer must list every value, in any order.

    ## Episode End
    ``terminated`` when the agent calls ``answer``. ``truncated`` when ``max_turns`` messages
    were written, a call was asked beyond ``max_tool_calls``, or the context outgrew
    ``max_context_chars`` (``info["truncated_by"]`` says which). Never both.
    The last step's ``info["result"]`` (``toolgym.envs.result``): success when the values are
    right, score 1.0 then, the answer and the gold values, ``extras["sql"]["gold_sql"]``.

    ## Arguments
    ``database``: overrides of ``DatabaseConfig`` (``{"seed": 0, "n_customers": 1200,
    "n_products": 240, "n_orders": 4000}``). ``templates``: question templates to draw from
    (default: all of ``toolgym.envs.sql.questions.TEMPLATES``). ``max_rows`` (50),
    ``max_steps`` (20,000,000), ``max_seconds`` (2.0), ``max_string_bytes`` (50,000): the query limits. ``tolerance``: relative
    tolerance of numeric answers (1e-6). Budgets and context options: see ``ToolEnv``.

    ## Version History
    * v0: initial version.

    >>> import gymnasium as gym, toolgym
    >>> env = gym.make("SQLQuery-v0", format="tags")
    >>> obs, info = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step("<sql>DROP TABLE orders</sql>")
    >>> info["tool_error"]
    'sql: DROP statements are not allowed: only read-only SELECT queries run'
    >>> obs, reward, terminated, truncated, info = env.step("<sql>SELECT COUNT(*) FROM orders</sql>")
    >>> print(obs[-1]["content"])
    <information>COUNT(*)
    4000
    (1 row)</information>
    >>> while not terminated:
    ...     obs, reward, terminated, truncated, info = env.step(env.unwrapped.oracle_action())
    >>> info["result"]["success"], info["reward_terms"]["answer"]
    (True, 1.0)
    """

    default_reward_weights: ClassVar[dict[str, float]] = {
        **ToolEnv.default_reward_weights,
        "answer": 1.0,
        "table": 0.05,
        "sql_error": -0.05,
    }

    def __init__(
        self,
        *,
        database: Mapping[str, Any] | None = None,
        templates: Sequence[str] | None = None,
        max_rows: int = 50,
        max_steps: int = 20_000_000,
        max_seconds: float = 2.0,
        max_string_bytes: int = 50_000,
        tolerance: float = 1e-6,
        **budgets: Any,
    ):
        check_argument_types({**locals(), **budgets}, SQLQueryEnv.__init__, ToolEnv.__init__)
        fields = set(DatabaseConfig.__dataclass_fields__)
        for key in database or {}:
            if key not in fields:
                raise unknown_name_error("database setting", key, fields)
        self.config = DatabaseConfig(**dict(database or {}))
        self.templates = tuple(templates) if templates is not None else tuple(TEMPLATES)
        if not self.templates:
            raise ValueError("templates= is empty; give at least one of: " + ", ".join(TEMPLATES))
        for name in self.templates:
            if name not in TEMPLATES:
                raise unknown_name_error("question template", name, TEMPLATES)
        if not 0 <= tolerance < 1:
            raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}.")
        self.tolerance = tolerance
        self.db = ReadOnlyDatabase(shared_database(self.config), max_rows=max_rows, max_steps=max_steps,
                                   max_seconds=max_seconds, max_string_bytes=max_string_bytes)
        self.question: SQLQuestion | None = None
        super().__init__(**budgets)

    # -- the task -----------------------------------------------------------------------------
    def _make_tools(self) -> Sequence[Tool]:
        return (ListTablesTool(self.db), DescribeTool(self.db), SQLTool(self.db), AnswerTool("Give the final answer: the value (a number or a name), or the names separated by commas."))

    def _instructions(self) -> str:
        return (
            "You answer questions about a shop's SQLite database. Find the tables and their columns, "
            "query them with SQL (read-only SELECT queries), and give the final answer with the answer "
            "tool: the value itself, or several values separated by commas."
        )

    def _new_task(self, options: Mapping[str, Any]) -> str:
        self.question = generate_question(self.np_random, self.db, self.templates)
        self._touched: list[str] = []
        self._gold_ran = False
        self._answer: str | None = None
        self._correct = False
        return f"Question: {self.question.question}"

    def _on_result(self, call: ToolCall, result: ToolResult, terms: RewardTerms) -> bool:
        if call.name == "answer":
            if not result.ok:
                return False
            self._answer = str(result.metadata.get("answer", ""))
            self._correct = check_answer(self._answer, self.question.answer, self.tolerance)
            terms.add("answer", float(self._correct))
            return True
        if result.metadata.get("sql_error"):
            terms.add("sql_error")
        if call.name == "sql" and result.ok:
            for table in result.metadata.get("tables", []):
                if table in self.question.tables and table not in self._touched:
                    self._touched.append(table)
                    terms.add("table")
            self._gold_ran = self._gold_ran or call.arguments.get("query") == self.question.gold_sql
        return False

    def oracle_action(self) -> str:
        """Run the gold query, then answer with its result."""
        if not self._gold_ran:
            return self.call("sql", query=self.question.gold_sql)
        return self.call("answer", answer=self.question.answer_text)

    def _task_info(self) -> dict[str, Any]:
        if self.question is None:
            return {}
        return {"template": self.question.template, "tables_touched": list(self._touched)}

    def _episode_result(self) -> EpisodeResult:
        return EpisodeResult(success=self._correct, score=float(self._correct), answer=self._answer,
                             gold=self.question.answer_text, extras={"sql": {"gold_sql": self.question.gold_sql}})

    def close(self) -> None:
        self.db.close()
        super().close()
