import time

import pytest

from toolgym.envs.tool import Tool, ToolResult, validate_arguments

SCHEMA = {
    "type": "object",
    "properties": {
        "query": {"type": "string"},
        "k": {"type": "integer", "minimum": 1, "maximum": 10},
        "mode": {"type": "string", "enum": ["fast", "exact"]},
    },
    "required": ["query"],
}


@pytest.mark.parametrize(
    "arguments, problem",
    [
        ({"query": "x"}, None),
        ({"query": "x", "k": 3, "mode": "fast"}, None),
        ({}, "missing required argument 'query'"),
        ({"query": "x", "topk": 3}, "unexpected argument 'topk'"),
        ({"query": 3}, "argument 'query' must be of type string, got int"),
        ({"query": "x", "k": True}, "argument 'k' must be of type integer, got bool"),
        ({"query": "x", "k": 2.5}, "argument 'k' must be of type integer, got float"),
        ({"query": "x", "k": 0}, "argument 'k' must be >= 1"),
        ({"query": "x", "k": 11}, "argument 'k' must be <= 10"),
        ({"query": "x", "mode": "slow"}, "argument 'mode' must be one of"),
        (["query"], "arguments must be a JSON object, got list"),
        ("query", "arguments must be a JSON object, got str"),
    ],
)
def test_validate_arguments(arguments, problem):
    found = validate_arguments(arguments, SCHEMA)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


class Search(Tool):
    name, description, parameters = "search", "Search.", SCHEMA

    def __init__(self, behaviour=None, timeout=1.0):
        self.behaviour, self.timeout = behaviour, timeout

    def run(self, query, k=3, mode="fast"):
        if self.behaviour == "raise":
            raise RuntimeError("backend exploded")
        if self.behaviour == "sleep":
            time.sleep(5)
        if self.behaviour == "wrong-type":
            return "not a ToolResult"
        return ToolResult(f"{query}:{k}", metadata={"k": k})


def test_call_runs_and_returns_result():
    result = Search()({"query": "paris", "k": 2})
    assert result == ToolResult("paris:2", metadata={"k": 2})


def test_invalid_arguments_become_an_error_result_marked_as_the_agents_fault():
    result = Search()({"q": "paris"})
    assert not result.ok and result.metadata == {"invalid_arguments": True}
    assert "missing required argument 'query'" in result.error
    assert result.content.startswith("Error: ")


@pytest.mark.parametrize(
    "behaviour, message",
    [
        ("raise", "search failed: RuntimeError: backend exploded"),
        ("wrong-type", "search returned str, not a ToolResult"),
    ],
)
def test_failures_never_raise(behaviour, message):
    result = Search(behaviour)({"query": "x"})
    assert not result.ok and result.error == message


def test_time_limit():
    start = time.perf_counter()
    result = Search("sleep", timeout=0.2)({"query": "x"})
    assert time.perf_counter() - start < 2
    assert not result.ok and "timed out after 0.2 s" in result.error and result.metadata["timed_out"]


def test_inline_tools_also_catch_exceptions():
    assert not Search("raise", timeout=None)({"query": "x"}).ok


def test_schema_is_openai_function_format():
    schema = Search().schema()
    assert schema == {"type": "function", "function": {"name": "search", "description": "Search.", "parameters": SCHEMA}}


class BatchSearch(Search):
    """Batchable: one run_batch for many calls."""

    def run_batch(self, arguments):
        self.batches = [*getattr(self, "batches", []), [a["query"] for a in arguments]]
        if self.behaviour == "short":
            return [ToolResult("only one")]
        if self.behaviour == "sleep":
            time.sleep(5)
        return [self.run(**a) for a in arguments]


def test_call_batch_runs_one_batch_and_bad_arguments_fail_alone():
    tool = BatchSearch()
    results = tool.call_batch([{"query": "a"}, {"q": "b"}, {"query": "c", "k": 1}])
    assert tool.batchable and not Search().batchable
    assert tool.batches == [["a", "c"]]
    assert results[0] == ToolResult("a:3", metadata={"k": 3}) and results[2] == ToolResult("c:1", metadata={"k": 1})
    assert not results[1].ok and "missing required argument 'query'" in results[1].error
    # A tool that does not batch gives what calling it once per call gives.
    assert Search().call_batch([{"query": "a"}, {"q": "b"}]) == [Search()({"query": "a"}), Search()({"q": "b"})]


@pytest.mark.parametrize(
    "behaviour, message",
    [
        ("raise", "search failed: RuntimeError: backend exploded"),
        ("short", "search.run_batch returned 1 results for 2 calls"),
        ("wrong-type", "search returned str, not a ToolResult"),
        ("sleep", "search timed out after 0.2 s"),
    ],
)
def test_a_failing_batch_fails_each_of_its_calls(behaviour, message):
    results = BatchSearch(behaviour, timeout=0.2).call_batch([{"query": "a"}, {"query": "b"}])
    assert len(results) == 2 and all(not r.ok and r.error.startswith(message) for r in results)
