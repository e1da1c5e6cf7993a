"""The ``native`` action format: tool calls in the model family's own syntax.

Qwen writes ``<tool_call>{json}</tool_call>``, Qwen3.5 ``<tool_call><function=...>``, Llama 3.1 a
bare ``{"name": ..., "parameters": ...}``, gpt-oss ``to=functions.search<|channel|>commentary json
<|message|>{...}``, Gemma 4 ``<|tool_call>call:search{...}``, and so on. :class:`NativeFormat` reads
them with transformers' ``parse_response`` and the response templates TRL's
``add_response_schema`` sets for the templates it knows, and writes them (oracles, warm starts)
by rendering a call with the chat template itself. A template with no tool-call syntax, or one no
response template covers, falls back to hermes ``<tool_call>`` JSON, described in the system prompt.

It satisfies the env's format interface, so an env takes it as ``format=``:

    env = gym.make("MultiHopQA-v0", format=NativeFormat(tokenizer))

``toolgym.envs`` stays free of transformers: the format object carries the tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.envs.formats import ActionFormat, HermesFormat, ParsedAction, ToolCall
from toolgym.envs.tool import Tool
from toolgym.generation.chat import ChatTemplate, template_name

_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL)


@dataclass(frozen=True, eq=False)
class NativeFormat(ActionFormat):
    """Tool calls in the syntax of ``tokenizer``'s chat template (see the module docstring).

    Args:
        tokenizer: the policy's tokenizer, with its chat template.
        chat_template_kwargs: as given to the rollout engine (e.g. ``enable_thinking``); the
            generation prompt they produce tells the parser whether a reply starts inside reasoning.
    """

    tokenizer: Any = field(default=None, repr=False)
    chat_template_kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)
    name: str = field(default="native", init=False)

    def __post_init__(self):
        if self.tokenizer is None:
            raise ValueError("NativeFormat needs the policy's tokenizer: NativeFormat(tokenizer)")
        template = ChatTemplate(self.tokenizer, self.chat_template_kwargs)
        object.__setattr__(self, "template", template)
        object.__setattr__(self, "family", template.name)
        parser = _response_parser(self.tokenizer)
        example = template.call_text("toolgym_probe", {"q": "x"}) if parser else ""
        object.__setattr__(self, "syntax", "native" if example else "hermes")
        # what a call starts with (before the tool's name): tells an attempted call from prose
        opener = example.split("toolgym_probe")[0].strip().split()[0] if example.strip() else "<tool_call>"
        object.__setattr__(self, "opener", opener)
        object.__setattr__(self, "_fallback", HermesFormat())
        prefix = template.render([{"role": "user", "content": "dummy"}])
        object.__setattr__(self, "_prefix", prefix)

    # -- reading -----------------------------------------------------------------------------------
    def parse(self, text: str, tools: Sequence[Tool]) -> ParsedAction:
        if self.syntax != "native":
            return self._fallback.parse(text, tools)
        try:
            message = self._parse_message(text, tools)
        except Exception as err:  # noqa: BLE001 - no action text may make the env's step raise
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            return ParsedAction((), (f"the tool call could not be parsed: {reason}",), attempted=True)
        calls = []
        for call in message.get("tool_calls") or []:
            fn = call.get("function", call)
            calls.append(ToolCall(str(fn.get("name")), fn.get("arguments") or {}))
        visible = _THINK.sub("", text) if "<think>" in text else text
        attempted = bool(calls) or self.opener in (message.get("content") or "") or (
            self.opener in visible and not message.get("reasoning_content") and not message.get("thinking"))
        if not calls and attempted:
            return ParsedAction((), (f"a tool call was started ({self.opener!r}) but could not be read; "
                                     f"write it as: {self.write_call('name', {'argument': 'value'})}",), attempted=True)
        return ParsedAction(tuple(calls), (), attempted=attempted)

    def parse_message(self, text: str, tools: Sequence[Tool] = ()) -> dict[str, Any]:
        """``text`` as a structured assistant message (``content``, ``tool_calls``, reasoning)."""
        if self.syntax != "native":
            calls = self._fallback.parse(text, tools).calls
            return {"role": "assistant", "content": re.sub(r"<tool_call>.*?(</tool_call>|\Z)", "", text, flags=re.S),
                    "tool_calls": [{"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                                   for c in calls]}
        try:
            return self._parse_message(text, tools)
        except Exception:  # noqa: BLE001 - unreadable: the text as it is
            return {"role": "assistant", "content": text}

    def _parse_message(self, text: str, tools: Sequence[Tool]) -> dict[str, Any]:
        schemas = [t.schema() for t in tools] or None
        try:
            message = self.tokenizer.parse_response(text, prefix=self._prefix, tools=schemas)
        except Exception:  # noqa: BLE001 - retried below, and raised if the retries fail too
            message = None
        if not (message or {}).get("tool_calls"):
            # some response templates need the end-of-turn token the engine took off (Llama's <|eot_id|>)
            for end in self.template._ends:
                try:
                    retry = self.tokenizer.parse_response(text + end, prefix=self._prefix, tools=schemas)
                except Exception:  # noqa: BLE001
                    continue
                if (retry or {}).get("tool_calls"):
                    return retry
        if message is None:
            return self.tokenizer.parse_response(text, prefix=self._prefix, tools=schemas)  # raises the error
        return message

    # -- writing -----------------------------------------------------------------------------------
    def write_call(self, tool: str, arguments: dict[str, Any]) -> str:
        if self.syntax != "native":
            return self._fallback.write_call(tool, arguments)
        return self.template.call_text(tool, arguments)

    def protocol(self, tools: Sequence[Tool]) -> str:
        if self.syntax != "native":
            return self._fallback.protocol(tools)
        return ("Call the tools above in your usual function-calling format; you may think first. "
                "Results come back in the next message.")

    def result_messages(self, results: Sequence[str], feedback: Sequence[str]) -> list[dict[str, str]]:
        role = "tool" if self.template.tool_role else "user"
        messages = [{"role": role, "content": content} for content in results]
        if feedback:
            messages.append({"role": "user", "content": "\n".join(feedback)})
        return messages

    def chat_tools(self, tools: Sequence[Tool]) -> list[dict[str, Any]]:
        return [tool.schema() for tool in tools]


# Response templates (transformers' parse_response format) for shipped chat templates TRL 1.16 has
# none for. DeepSeek-V3 writes <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME
# then the arguments in a ```json fence, after reasoning its generation prompt opened.
RESPONSE_TEMPLATES: dict[str, dict[str, Any]] = {
    "deepseekv3": {
        "defaults": {"role": "assistant"},
        "start_anchor": "<｜Assistant｜>",
        "fields": {
            "reasoning_content": {"open": "<think>", "close_pattern": r"</think>\s*", "content": "text"},
            "tool_calls": {
                "open_pattern": r"(?:<｜tool▁calls▁begin｜>)?<｜tool▁call▁begin｜>function<｜tool▁sep｜>(?P<name>[^\n]+)\n```json\n",
                "close_pattern": r"\n```<｜tool▁call▁end｜>(?:<｜tool▁calls▁end｜>)?\s*",
                "repeats": True,
                "content": "json",
                "transform": {"type": "function", "function": {"name": "{name}", "arguments": "{content}"}},
            },
            "content": {"close_pattern": r"<｜end▁of▁sentence｜>\s*", "content": "text"},
        },
    },
}


def _response_parser(tokenizer) -> bool:
    """Give ``tokenizer`` a response template for its chat template (TRL's, else ours); False when none is known."""
    if getattr(tokenizer, "response_template", None) or getattr(tokenizer, "response_schema", None):
        return True
    try:
        from trl.chat_template_utils import add_response_schema  # optional: without TRL, our templates

        add_response_schema(tokenizer)
        return True
    except (ImportError, ValueError):
        pass
    template = RESPONSE_TEMPLATES.get(template_name(tokenizer))
    if template is None:
        return False
    tokenizer.response_template = template
    return True

