"""Action formats: how an agent's text encodes tool calls, and how results are shown back.

- ``hermes``: Qwen2.5/Hermes function calling. ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``,
  several in one message; results come back as ``{"role": "tool"}`` messages, and the tool schemas
  are passed to ``tokenizer.apply_chat_template(..., tools=...)``.
- ``tags``: Search-R1. ``<search>query</search>`` and ``<answer>text</answer>``: every tool whose
  arguments are a single string gets a tag of its name; results come back in
  ``<information>...</information>`` inside a user message.

Free text around the calls (reasoning, ``<think>...</think>``) is allowed; calls inside a
``<think>`` block are reasoning, not actions, and are ignored.
"""

from __future__ import annotations

import bisect
import json
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.envs.errors import unknown_name_error
from toolgym.envs.tool import Tool

_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL)


def _without_thoughts(text: str) -> str:
    """``text`` minus its ``<think>`` blocks (calls written while thinking are not actions)."""
    return _THINK.sub("", text) if "<think>" in text else text


def _loads(text: str) -> tuple[Any, str | None]:
    """``json.loads`` that never raises on what a model can write: (value, None) or (None, why).

    Beyond malformed JSON, ``json.loads`` raises ValueError on an integer of more than 4,300
    digits (Python's int-to-str limit) and RecursionError on deep nesting.
    """
    try:
        return json.loads(text), None
    except json.JSONDecodeError as err:
        return None, str(err)
    except RecursionError:
        return None, "it nests deeper than the JSON reader allows"
    except ValueError:  # the only other ValueError json.loads raises: Python's int-to-str limit
        return None, f"a number in it has more than {sys.get_int_max_str_digits()} digits"


@dataclass(frozen=True)
class ToolCall:
    """A call the agent asked for: a tool name and its arguments (not yet validated)."""

    name: str
    arguments: Any


@dataclass(frozen=True)
class ParsedAction:
    """What a format found in an action: the well-formed calls, and what could not be parsed."""

    calls: tuple[ToolCall, ...] = ()
    errors: tuple[str, ...] = ()
    #: True when the text tried to call something at all (a call block or tag was present).
    attempted: bool = False


@dataclass(frozen=True)
class ActionFormat(ABC):
    """How tool calls are written by the agent and how results are given back."""

    name: str = field(init=False)

    @abstractmethod
    def parse(self, text: str, tools: Sequence[Tool]) -> ParsedAction: ...

    @abstractmethod
    def protocol(self, tools: Sequence[Tool]) -> str:
        """The part of the system prompt that tells the agent how to call tools and answer."""

    @abstractmethod
    def result_messages(self, results: Sequence[str], feedback: Sequence[str]) -> list[dict[str, str]]:
        """Messages that show tool results (one string per call) and feedback (errors, notes)."""

    @abstractmethod
    def write_call(self, tool: str, arguments: dict[str, Any]) -> str:
        """The text that calls ``tool`` with ``arguments`` in this format (oracles, warm starts)."""

    def chat_tools(self, tools: Sequence[Tool]) -> list[dict[str, Any]] | None:
        """Schemas for ``apply_chat_template(tools=...)``; None when the prompt describes the tools."""
        return None


def _tool_list(tools: Sequence[Tool]) -> str:
    lines = []
    for tool in tools:
        args = ", ".join(f"{k}: {v.get('type', 'any')}" for k, v in tool.parameters.get("properties", {}).items())
        lines.append(f"- {tool.name}({args}): {tool.description}")
    return "\n".join(lines)


@dataclass(frozen=True)
class HermesFormat(ActionFormat):
    name: str = field(default="hermes", init=False)

    _BLOCK = re.compile(r"<tool_call>(.*?)(</tool_call>|\Z)", re.DOTALL)

    def parse(self, text: str, tools: Sequence[Tool]) -> ParsedAction:
        text = _without_thoughts(text)
        calls, errors = [], []
        blocks = list(self._BLOCK.finditer(text))
        for number, block in enumerate(blocks, start=1):
            body, closed = block.group(1).strip(), bool(block.group(2))
            where = f"tool call {number}" if len(blocks) > 1 else "the tool call"
            payload, problem = _loads(body)
            if problem is not None:
                hint = "" if closed else " (it has no closing </tool_call>)"
                errors.append(f"{where} is not valid JSON{hint}: {problem}")
                continue
            if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
                errors.append(f'{where} must be a JSON object with a "name" string and an "arguments" object, got {body[:120]!r}')
                continue
            arguments = payload.get("arguments", payload.get("parameters", {}))
            if isinstance(arguments, str):  # some models send the arguments JSON-encoded
                decoded, problem = _loads(arguments)
                # Undecodable: keep the string, which argument validation then reports.
                arguments = arguments if problem is not None else decoded
            calls.append(ToolCall(payload["name"], arguments))
        return ParsedAction(tuple(calls), tuple(errors), attempted=bool(blocks))

    def protocol(self, tools: Sequence[Tool]) -> str:
        return (
            "You can call these tools:\n"
            f"{_tool_list(tools)}\n"
            "To call a tool, write a JSON object inside <tool_call></tool_call> tags, for example:\n"
            '<tool_call>{"name": "' + tools[0].name + '", "arguments": {...}}</tool_call>\n'
            "You may think before a call. Results come back in the next message."
        )

    def result_messages(self, results: Sequence[str], feedback: Sequence[str]) -> list[dict[str, str]]:
        messages = [{"role": "tool", "content": content} for content in results]
        if feedback:
            messages.append({"role": "user", "content": "\n".join(feedback)})
        return messages

    def write_call(self, tool: str, arguments: dict[str, Any]) -> str:
        return f"<tool_call>{json.dumps({'name': tool, 'arguments': arguments}, ensure_ascii=False)}</tool_call>"

    def chat_tools(self, tools: Sequence[Tool]) -> list[dict[str, Any]]:
        return [tool.schema() for tool in tools]


@dataclass(frozen=True)
class TagsFormat(ActionFormat):
    name: str = field(default="tags", init=False)

    # An opening or closing tag. Calls are paired by ``tag_pairs`` in one pass: the regex
    # ``<(name)>(.*?)</\1>`` is quadratic on many tags that are never closed.
    _TAG = re.compile(r"<(/?)([A-Za-z_][\w-]*)>")
    # Tags a model writes that are not calls.
    _NOT_CALLS = frozenset({"think", "information", "tool_response", "result"})

    @staticmethod
    def tag_argument(tool: Tool) -> str | None:
        """The name of the single string argument that makes ``tool`` usable as a tag."""
        properties = tool.parameters.get("properties", {})
        if len(properties) == 1:
            (arg, spec), = properties.items()
            if spec.get("type") == "string":
                return arg
        return None

    def parse(self, text: str, tools: Sequence[Tool]) -> ParsedAction:
        text = _without_thoughts(text)
        by_name = {tool.name: tool for tool in tools}
        calls, errors, attempted = [], [], False
        for tag, body in self.tag_pairs(text):
            if tag in self._NOT_CALLS:
                continue
            attempted = True
            tool = by_name.get(tag)
            if tool is None:
                errors.append(str(unknown_name_error("tag", f"<{tag}>", [f"<{t}>" for t in by_name])))
                continue
            arg = self.tag_argument(tool)
            if arg is None:
                errors.append(f"tool {tag!r} takes structured arguments and cannot be called as a tag")
                continue
            calls.append(ToolCall(tag, {arg: body}))
        if not attempted:
            for tool in tools:  # an opened tag never closed is a call gone wrong, not free text
                if f"<{tool.name}>" in text:
                    errors.append(f"<{tool.name}> is never closed: write <{tool.name}>...</{tool.name}>")
                    attempted = True
        return ParsedAction(tuple(calls), tuple(errors), attempted=attempted)

    @classmethod
    def tag_pairs(cls, text: str) -> list[tuple[str, str]]:
        r"""(tag, stripped body) of each ``<tag>body</tag>``, left to right: each opening tag pairs
        with the first closing tag of its name after it, and the scan resumes after that closing
        tag (what ``re.finditer(r"<(t)>(.*?)</\1>")`` finds), in O(n log n) for n tags."""
        openings: list[tuple[int, int, str]] = []
        closings: dict[str, list[tuple[int, int]]] = {}
        for match in cls._TAG.finditer(text):
            if match.group(1):
                closings.setdefault(match.group(2), []).append((match.start(), match.end()))
            else:
                openings.append((match.start(), match.end(), match.group(2)))
        pairs, position = [], 0
        for start, end, tag in openings:
            ends = closings.get(tag)
            if start < position or not ends:
                continue
            index = bisect.bisect_left(ends, (end, end))
            if index == len(ends):
                continue
            close_start, close_end = ends[index]
            pairs.append((tag, text[end:close_start].strip()))
            position = close_end
        return pairs

    def protocol(self, tools: Sequence[Tool]) -> str:
        tags = [f"<{t.name}>{self.tag_argument(t)}</{t.name}>: {t.description}" for t in tools if self.tag_argument(t)]
        return (
            "You can use these tags:\n"
            + "\n".join(f"- {line}" for line in tags)
            + "\nResults come back between <information> and </information>. "
            "You may reason inside <think></think> first."
        )

    def write_call(self, tool: str, arguments: dict[str, Any]) -> str:
        if len(arguments) > 1:
            raise ValueError(f"the tags format calls tools with one string argument; {tool!r} got {sorted(arguments)}.")
        (value,) = arguments.values() or ("",)
        return f"<{tool}>{value}</{tool}>"

    def result_messages(self, results: Sequence[str], feedback: Sequence[str]) -> list[dict[str, str]]:
        parts = [f"<information>{content}</information>" for content in results]
        parts.extend(feedback)
        return [{"role": "user", "content": "\n".join(parts)}] if parts else []


FORMATS: dict[str, type[ActionFormat]] = {"hermes": HermesFormat, "tags": TagsFormat}


def get_format(name: str | ActionFormat) -> ActionFormat:
    """``get_format("hermes")``; an unknown name raises with the closest valid one suggested."""
    if isinstance(name, ActionFormat):
        return name
    if name not in FORMATS:
        raise unknown_name_error("format", name, FORMATS)
    return FORMATS[name]()
