"""Tools: what an agent can call. A tool reports what happened; the env decides what it means."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class ToolResult:
    """The outcome of one tool call.

    Attributes:
        content: the text the agent will see.
        ok: False when the call failed (bad arguments, time limit, an exception, a server down).
        error: what went wrong, for ``info["tool_error"]``; None when ok.
        metadata: facts for the env to interpret (the passages returned, a final answer...); the
            env turns what matters into its own JSON-serialisable ``info``.
    """

    content: str
    ok: bool = True
    error: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def failure(cls, error: str, **metadata: Any) -> ToolResult:
        return cls(content=f"Error: {error}", ok=False, error=error, metadata=metadata)


def validate_arguments(arguments: Any, schema: dict[str, Any]) -> str | None:
    """Check ``arguments`` against a JSON-schema ``object``; return what is wrong, or None.

    Covers what function-calling schemas use: required and unexpected keys, JSON types, enums,
    and ``minimum``/``maximum``. Booleans are not integers here, as in JSON.
    """
    if not isinstance(arguments, dict):
        return f"arguments must be a JSON object, got {type(arguments).__name__} {arguments!r:.80}"
    properties: dict[str, Any] = schema.get("properties", {})
    missing = [name for name in schema.get("required", ()) if name not in arguments]
    if missing:
        return f"missing required argument {missing[0]!r} (expected arguments: {', '.join(properties) or 'none'})"
    if schema.get("additionalProperties", False) is False:
        extra = [name for name in arguments if name not in properties]
        if extra:
            return f"unexpected argument {extra[0]!r} (expected arguments: {', '.join(properties) or 'none'})"
    for name, value in arguments.items():
        spec = properties.get(name, {})
        expected = spec.get("type")
        if expected is not None:
            kinds = expected if isinstance(expected, list) else [expected]
            matches = any(
                isinstance(value, _JSON_TYPES.get(kind, object)) and not (isinstance(value, bool) and kind in ("integer", "number"))
                for kind in kinds
            )
            if not matches:
                return f"argument {name!r} must be of type {'/'.join(kinds)}, got {type(value).__name__} {value!r:.80}"
        if "enum" in spec and value not in spec["enum"]:
            return f"argument {name!r} must be one of {spec['enum']}, got {value!r:.80}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if "minimum" in spec and value < spec["minimum"]:
                return f"argument {name!r} must be >= {spec['minimum']}, got {value!r}"
            if "maximum" in spec and value > spec["maximum"]:
                return f"argument {name!r} must be <= {spec['maximum']}, got {value!r}"
    return None


def string_arguments(optional: tuple[str, ...] = (), **descriptions: str) -> dict[str, Any]:
    """The JSON schema of arguments that are all strings (most tools take one):
    ``string_arguments(query="What to look for")``; names in ``optional`` may be left out."""
    return {
        "type": "object",
        "properties": {name: {"type": "string", "description": text} for name, text in descriptions.items()},
        "required": [name for name in descriptions if name not in optional],
    }


class Tool:
    """A callable an agent can use, described for the model by a name, a description and a schema.

    Subclasses set ``name``, ``description`` and ``parameters`` (a JSON schema of type object) and
    implement ``run(**arguments)``. Calling the tool validates the arguments, runs it under a time
    limit and turns any failure into a ``ToolResult`` with ``ok=False``: a tool never raises into
    the environment.

    >>> class Echo(Tool):
    ...     name, description = "echo", "Repeat the text."
    ...     parameters = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    ...     def run(self, text):
    ...         return ToolResult(text)
    >>> Echo()({"text": "hi"}).content
    'hi'
    >>> Echo()({"txt": "hi"}).error
    "echo: missing required argument 'text' (expected arguments: text)"
    """

    name: str = "tool"
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    #: Seconds a call may take; None runs it inline with no limit (for tools that are fast and
    #: bounded by construction, or that enforce a limit of their own, such as a socket timeout).
    timeout: float | None = 10.0
    #: True when a call's result depends only on its arguments and the call changes nothing (a
    #: search, a read-only query, a calculation). Only such calls are run ahead of ``step()`` by
    #: ``toolgym.envs.batch``, together with the calls of the other envs of a batch; the calls of
    #: other tools run inside ``step()``, one by one, as they always do.
    pure: bool = False
    #: Where the batch stepper runs this tool's calls: ``"thread"`` (it waits on I/O: a server, a
    #: subprocess; the calls of many envs overlap), ``"process"`` (CPU-bound Python: worker
    #: processes when the stepper has some, else inline; the tool must pickle) or ``"inline"``
    #: (fast: in the stepping thread). One tool object is never called from two threads at once.
    concurrency: str = "thread"
    #: True when ``run_batch`` may run in several threads at once (a stateless client of a server).
    #: Stepping actions as they arrive, the batch stepper then keeps more than one micro-batch of
    #: calls out at once (``BatchStepper(in_flight=)``); otherwise the next waits for the last.
    thread_safe: bool = False

    def run(self, **arguments: Any) -> ToolResult:
        raise NotImplementedError

    def run_batch(self, arguments: Sequence[dict[str, Any]]) -> list[ToolResult]:
        """Run many calls at once; one result per call, in order. Overriding it declares the tool
        batchable: the batch stepper then gives it, in one call, the calls of every tool of the
        batch with the same :meth:`batch_key` (e.g. every env's search over one retriever, one
        request). The arguments are already validated; an exception fails every call of the batch.
        The default runs the calls one by one."""
        return [self.run(**args) for args in arguments]

    def batch_key(self) -> Hashable:
        """Calls to tools with equal keys may be run together by any one of them in :meth:`run_batch`.
        The default groups only the calls of this tool object; override it to batch across envs."""
        return (type(self), id(self))

    @property
    def batchable(self) -> bool:
        """True when the tool overrides :meth:`run_batch`."""
        return type(self).run_batch is not Tool.run_batch

    def schema(self) -> dict[str, Any]:
        """The OpenAI function-calling schema, as ``apply_chat_template(..., tools=...)`` takes it."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def __call__(self, arguments: Any) -> ToolResult:
        problem = validate_arguments(arguments, self.parameters)
        if problem is not None:
            return ToolResult.failure(f"{self.name}: {problem}", invalid_arguments=True)
        return self._guarded(lambda: [self.run(**arguments)], 1)[0]

    def call_batch(self, arguments: Sequence[Any]) -> list[ToolResult]:
        """What ``[self(a) for a in arguments]`` returns, through one :meth:`run_batch` when the tool is
        batchable: invalid arguments fail alone, the valid calls share one time limit."""
        if not self.batchable:
            return [self(args) for args in arguments]
        results: list[ToolResult | None] = []
        valid: list[int] = []
        for i, args in enumerate(arguments):
            problem = validate_arguments(args, self.parameters)
            results.append(None if problem is None else ToolResult.failure(f"{self.name}: {problem}", invalid_arguments=True))
            if problem is None:
                valid.append(i)
        if valid:
            ran = self._guarded(lambda: self.run_batch([arguments[i] for i in valid]), len(valid))
            for i, result in zip(valid, ran, strict=True):
                results[i] = result
        return results  # type: ignore[return-value]

    def _guarded(self, run: Callable[[], Any], n: int) -> list[ToolResult]:
        """``run()``'s ``n`` results, under the time limit; any failure becomes ``n`` error results."""
        if self.timeout is None:
            return self._run_safely(run, n)
        return self._run_with_time_limit(run, n, self.timeout)

    def _run_safely(self, run: Callable[[], Any], n: int) -> list[ToolResult]:
        try:
            results = run()
        except Exception as err:  # noqa: BLE001 - a tool must never raise into the env
            return [ToolResult.failure(f"{self.name} failed: {type(err).__name__}: {err}")] * n
        if not isinstance(results, list) or len(results) != n:
            got = f"{len(results)} results" if isinstance(results, list) else type(results).__name__
            return [ToolResult.failure(f"{self.name}.run_batch returned {got} for {n} calls; it must return a list of one ToolResult per call")] * n
        return [r if isinstance(r, ToolResult) else
                ToolResult.failure(f"{self.name} returned {type(r).__name__}, not a ToolResult") for r in results]

    def _run_with_time_limit(self, run: Callable[[], Any], n: int, timeout: float) -> list[ToolResult]:
        # A daemon thread: Python cannot kill a thread, so a call that overruns is abandoned (it
        # finishes in the background) and the agent is told it timed out.
        box: list[list[ToolResult]] = []
        worker = threading.Thread(target=lambda: box.append(self._run_safely(run, n)), daemon=True)
        worker.start()
        worker.join(timeout)
        if not box:
            return [ToolResult.failure(f"{self.name} timed out after {timeout:g} s", timed_out=True)] * n
        return box[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class AnswerTool(Tool):
    """The final answer, shared by every task. It only records the text (``metadata["answer"]``);
    the env scores it and ends the episode. ``description`` tells the model what form to give."""

    name = "answer"
    description = "Give the final answer: a short phrase (a name, a date, a place), not a sentence."
    parameters = string_arguments(answer="The final answer, as short as possible.")
    timeout = None
    pure, concurrency = True, "inline"

    def __init__(self, description: str | None = None):
        if description is not None:
            self.description = description

    def run(self, answer: str) -> ToolResult:
        return ToolResult("Answer received.", metadata={"answer": answer})
