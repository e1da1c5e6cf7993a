"""Tools: what an agent can call. A tool reports what happened; the env decides what it means."""

from __future__ import annotations

import threading
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

    def run(self, **arguments: Any) -> ToolResult:
        raise NotImplementedError

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
        if self.timeout is None:
            return self._run_safely(arguments)
        return self._run_with_time_limit(arguments, self.timeout)

    def _run_safely(self, arguments: dict[str, Any]) -> ToolResult:
        try:
            result = self.run(**arguments)
        except Exception as err:  # noqa: BLE001 - a tool must never raise into the env
            return ToolResult.failure(f"{self.name} failed: {type(err).__name__}: {err}")
        if not isinstance(result, ToolResult):
            return ToolResult.failure(f"{self.name} returned {type(result).__name__}, not a ToolResult")
        return result

    def _run_with_time_limit(self, arguments: dict[str, Any], timeout: float) -> ToolResult:
        # A daemon thread: Python cannot kill a thread, so a call that overruns is abandoned (it
        # finishes in the background) and the agent is told it timed out.
        box: list[ToolResult] = []
        worker = threading.Thread(target=lambda: box.append(self._run_safely(arguments)), daemon=True)
        worker.start()
        worker.join(timeout)
        if not box:
            return ToolResult.failure(f"{self.name} timed out after {timeout:g} s", timed_out=True)
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

    def __init__(self, description: str | None = None):
        if description is not None:
            self.description = description

    def run(self, answer: str) -> ToolResult:
        return ToolResult("Answer received.", metadata={"answer": answer})
