"""Chat templates as a multi-turn tool loop needs them: render once, then only append.

Many chat templates rewrite earlier assistant turns when new messages follow (Qwen3 and later
strip or re-space past reasoning, DeepSeek drops its ``<think>`` opener, gpt-oss turns a final
``<|return|>`` into ``<|end|>``), so re-rendering a conversation does not reproduce the tokens a
model sampled. :class:`ChatTemplate` never re-renders the past. The first prompt is rendered once;
after each sampled turn, the env's new messages become tokens by rendering them after a fixed
dummy conversation (a user message and an assistant turn, with tool calls when tool results
follow) and keeping what the template writes after that assistant turn ends: the env's messages
and the generation prompt. TRL 1.16 does the same in ``GRPOTrainer._get_tool_suffix_ids``.

The sampled turn ends with a stop token (``<|im_end|>``, ``<|eot_id|>``, ``<|call|>``...) that
takes the place of the template's own end-of-turn token; a turn cut by the token budget gets the
template's end-of-turn as env tokens.

Templates differ in what a conversation may hold; :class:`ChatTemplate` probes the template once
at construction and adapts messages: a system message folded into the first user message when
there is no system role (Gemma), tool results shown as user messages when there is no tool role,
structured ``tool_calls`` on assistant messages when tool results must answer one (gpt-oss). A
template that cannot carry a multi-turn conversation at all raises :class:`TemplateUnsupportedError`
at construction, naming the template and what it lacks.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: Tokens that close an assistant turn (or hand it to a tool) in the templates TRL ships.
END_OF_TURN_TOKENS = (
    "<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>", "<turn|>", "<|tool_response>", "<|call|>",
    "<|return|>", "<|end|>", "<｜end▁of▁sentence｜>", "<|END_OF_TURN_TOKEN|>", "<|endoftext|>", "<|observation|>",
    "<|user|>",
)
# gpt-oss closes each message of a turn (reasoning, commentary) with <|end|> and stops sampling only
# at <|return|> or <|call|>.
_NOT_STOPS_WHEN = {"<|end|>": "<|return|>"}

# End-of-turn tokens that also open the next message.
_OPENERS = frozenset({"<|user|>", "<|observation|>", "<|tool_response>"})

_USER = {"role": "user", "content": "dummy"}
_SENTINEL = "toolgym_sentinel_7f3a"


class TemplateUnsupportedError(ValueError):
    """The chat template cannot carry a multi-turn tool conversation."""


@functools.cache
def shipped_templates() -> dict[str, str]:
    """TRL's chat templates by file stem (``qwen3``, ``gptoss``...), without the training variants."""
    try:
        root = importlib.resources.files("trl").joinpath("chat_templates")
    except ModuleNotFoundError:
        return {}
    return {p.name[:-6]: p.read_text() for p in root.iterdir()
            if p.name.endswith(".jinja") and not p.name.endswith("_training.jinja")}


def template_name(tokenizer) -> str:
    """The name of TRL's shipped template the tokenizer carries (``"qwen3"``), else ``"custom"``."""
    source = getattr(tokenizer, "chat_template", None)
    return next((name for name, text in shipped_templates().items() if text == source), "custom")


def stop_token_ids(tokenizer) -> set[int]:
    """The tokenizer's eos and the end-of-turn tokens its chat template uses (each one token)."""
    stops = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    source = getattr(tokenizer, "chat_template", None) or ""
    vocab = tokenizer.get_vocab()
    for text in END_OF_TURN_TOKENS:
        if text in source and text in vocab and _NOT_STOPS_WHEN.get(text, "\0") not in source:
            stops.add(vocab[text])
    return stops


def _call(name: str, arguments: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


class ChatTemplate:
    """A tokenizer's chat template, probed once, rendering prompts and env-message suffixes.

    Args:
        tokenizer: a tokenizer with a chat template.
        chat_template_kwargs: passed to every ``apply_chat_template`` call (e.g. ``enable_thinking``).

    Raises:
        TemplateUnsupportedError: the template cannot render a conversation that goes on after an
            assistant turn (the message names the template and what it lacks).
    """

    def __init__(self, tokenizer, chat_template_kwargs: Mapping[str, Any] | None = None):
        if getattr(tokenizer, "chat_template", None) is None:
            raise TemplateUnsupportedError("the tokenizer has no chat template; set tokenizer.chat_template "
                                           "(e.g. one of trl/chat_templates/*.jinja)")
        self.tokenizer = tokenizer
        self.kwargs = dict(chat_template_kwargs or {})
        self.name = template_name(tokenizer)
        self.stop_ids = stop_token_ids(tokenizer)
        source = tokenizer.chat_template
        self._ends = tuple(t for t in END_OF_TURN_TOKENS if t in source) or tuple(
            t for t in (tokenizer.eos_token,) if t)
        self._string_arguments = False  # DeepSeek-V3's template concatenates arguments as a string
        self._probe()

    # -- rendering -----------------------------------------------------------------------------------
    def render(self, messages: Sequence[Mapping[str, Any]], tools=None, *, generation_prompt: bool = True) -> str:
        """The template's text for ``messages`` as given (no adaptation)."""
        return self.tokenizer.apply_chat_template(list(messages), tools=tools, tokenize=False,
                                                  add_generation_prompt=generation_prompt, **self.kwargs)

    def prompt(self, messages: Sequence[Mapping[str, Any]], tools=None,
               parse_calls: Callable[[str], tuple[str, list]] | None = None) -> str:
        """The text of a whole conversation, ending with the generation prompt (first prompts, and
        contexts that changed). ``parse_calls(text) -> (content, [(name, arguments)...])`` gives
        structured tool calls to assistant messages where the template needs them."""
        return self.render(self.adapt(messages, parse_calls), tools)

    def adapt(self, messages: Sequence[Mapping[str, Any]],
              parse_calls: Callable[[str], tuple[str, list]] | None = None) -> list[dict[str, Any]]:
        """``messages`` in the roles and shape this template can render (see the module docstring)."""
        out: list[dict[str, Any]] = []
        system = None
        names: list[str] = []
        for m in messages:
            m = dict(m)
            role = m["role"]
            if role == "system" and not self.system_role:
                system = m["content"]
                continue
            if role == "assistant" and self.needs_calls and parse_calls is not None:
                content, calls = parse_calls(m["content"])
                if calls:
                    names = [name for name, _ in calls]
                    m = {"role": "assistant", "content": content,
                         "tool_calls": [_call(n, self._arguments(a)) for n, a in calls]}
            if role == "tool":
                if not self.tool_role:
                    m = {"role": "user", "content": f"<tool_response>\n{m['content']}\n</tool_response>"}
                elif "name" not in m and names:
                    m["name"] = names.pop(0)
            if system is not None and m["role"] == "user":
                m["content"], system = f"{system}\n\n{m['content']}", None
            if out and not self.tool_role and m["role"] == "user" == out[-1]["role"]:
                out[-1] = {**out[-1], "content": f"{out[-1]['content']}\n\n{m['content']}"}
                continue
            out.append(m)
        if system is not None:
            out.insert(0, {"role": "user", "content": system})
        return out

    def suffix(self, new_messages: Sequence[Mapping[str, Any]], *, stopped: str | None,
               call_names: Sequence[str] = ()) -> str:
        """The text the template writes after an assistant turn for ``new_messages`` (the env's
        messages that follow it), through the generation prompt.

        Args:
            new_messages: the messages the env added after the assistant's turn.
            stopped: the stop token the sampled turn ended with, which then stands for the
                template's end-of-turn token; None (a turn cut by the token budget) adds it.
            call_names: the tools the turn called, in order (templates such as gpt-oss name
                the tool in the header of its result).
        """
        new = self.adapt(new_messages)
        n_tools = sum(m["role"] == "tool" for m in new)
        names = list(call_names)[:n_tools]
        names += [names[-1] if names else "tool"] * (n_tools - len(names))
        if self.tool_role:
            pending = list(names)
            new = [{**m, "name": m.get("name") or pending.pop(0)} if m["role"] == "tool" else m for m in new]
        text, turn_start = self._after_dummy(new, names)
        at = self._turn_end(text, turn_start)
        if at < 0:
            raise TemplateUnsupportedError(
                f"chat template {self.name!r} wrote no end-of-turn token ({', '.join(self._ends)}) after an "
                f"assistant turn followed by {[m['role'] for m in new]} messages: {text[turn_start:][:200]!r}")
        rest = text[at:]
        end = next(t for t in self._ends if rest.startswith(t))
        # the sampled stop stands for the template's end of turn, unless the template's token also
        # opens what follows (GLM's <|user|>, Gemma 4's <|tool_response>) and the model stopped otherwise
        if stopped == end or (stopped is not None and end not in _OPENERS):
            rest = rest[len(end):]
        return rest

    def closing_token(self, called: Sequence[str] = ()) -> str:
        """The token that ends an assistant turn calling ``called`` tools (one with no call when
        empty): what a model of this family stops sampling on (``<|im_end|>``, ``<|call|>``...)."""
        follow = [{"role": "tool", "name": n, "content": _SENTINEL} for n in called] if called and self.tool_role \
            else [{"role": "user", "content": _SENTINEL}]
        text, start = self._after_dummy(follow, list(called) if self.tool_role else [])
        at = self._turn_end(text, start)
        return next(t for t in self._ends if text.startswith(t, at))

    # -- helpers -----------------------------------------------------------------------------------------
    def _arguments(self, arguments: Any) -> Any:
        if self._string_arguments and not isinstance(arguments, str):
            return json.dumps(arguments, ensure_ascii=False)
        return arguments

    def _dummy(self, names: Sequence[str]) -> list[dict[str, Any]]:
        if names:
            calls = [_call(n, self._arguments({})) for n in names]
            return [dict(_USER), {"role": "assistant", "content": "", "tool_calls": calls}]
        return [dict(_USER), {"role": "assistant", "content": "dummy"}]

    def _after_dummy(self, new: list[dict], names: Sequence[str]) -> tuple[str, int]:
        """The dummy conversation followed by ``new``, rendered, and where its assistant turn starts."""
        try:
            text = self.render(self._dummy(names) + new)
        except Exception:  # noqa: BLE001 - e.g. Llama 3.1 takes one call per turn: its results render alike
            if len(names) < 2:
                raise
            text = self.render(self._dummy(names[:1]) + new)
        start = self._user_text
        return text, len(start) if text.startswith(start) else _common_prefix(start, text)

    def _turn_end(self, text: str, start: int) -> int:
        """Where the first end-of-turn token after ``start`` begins, or -1."""
        found = [k for k in (text.find(t, start) for t in self._ends) if k >= 0]
        return min(found) if found else -1

    def call_text(self, name: str, arguments: Mapping[str, Any]) -> str:
        """How this template writes a call of ``name`` in an assistant turn ("" when it renders none)."""
        user = [dict(_USER)]
        plain = self.render(user + [{"role": "assistant", "content": ""}], generation_prompt=False)
        called = self.render(user + [{"role": "assistant", "content": "",
                                      "tool_calls": [_call(name, self._arguments(dict(arguments)))]}],
                             generation_prompt=False)
        start = _common_prefix(self._user_text, plain)
        plain = plain[:self._cut(plain, start)]
        called = called[:self._cut(called, start)]
        head = _common_prefix(plain, called)
        return called[head:] if name in called[head:] else ""

    def _cut(self, text: str, start: int) -> int:
        at = self._turn_end(text, start)
        return len(text) if at < 0 else at

    # -- probing ---------------------------------------------------------------------------------------
    def _probe(self) -> None:
        what = f"chat template {self.name!r}"
        try:
            plain, prompted = self.render([dict(_USER)], generation_prompt=False), self.render([dict(_USER)])
        except Exception as err:  # noqa: BLE001 - any template failure is a start-up error
            raise TemplateUnsupportedError(f"{what} cannot render a user message: {err}") from err
        # what every conversation starting with the dummy user message starts with (Phi-3 ends a
        # conversation without a generation prompt with <|endoftext|>, so take the common part)
        self._user_text = plain[:_common_prefix(plain, prompted)]
        self.generation_prompt = prompted[len(self._user_text):]
        self.system_role = self._renders([{"role": "system", "content": _SENTINEL}, dict(_USER)])
        # a tool result answering a call; some templates (DeepSeek-V3) want the arguments as a string
        self.tool_role = self._renders(self._dummy(["search"]) + [{"role": "tool", "name": "search",
                                                                    "content": _SENTINEL}])
        if not self.tool_role:
            self._string_arguments = True
            self.tool_role = self._renders(self._dummy(["search"]) + [{"role": "tool", "name": "search",
                                                                        "content": _SENTINEL}])
            self._string_arguments = self.tool_role
        # gpt-oss and Gemma 4 name the tool beside its result: only then must a step's calls be read
        self.names_matter = self.tool_role and self._shows_tool_names()
        # gpt-oss: a tool result must follow an assistant message with a structured call
        self.needs_calls = self.tool_role and not self._renders(
            [dict(_USER), {"role": "assistant", "content": "x"}, {"role": "tool", "name": "search", "content": _SENTINEL}])
        # the loop itself: a user message after an assistant turn, rendered after the turn's end
        lacks = None
        try:
            text, start = self._after_dummy([{"role": "user", "content": _SENTINEL}], [])
        except Exception as err:  # noqa: BLE001
            lacks = f"it cannot render a user message after an assistant turn ({type(err).__name__}: {err})"
        else:
            at = self._turn_end(text, start)
            if "dummy" not in text[start:] or text.count(_SENTINEL) != 1:
                lacks = "it does not render every message of a conversation (earlier turns are dropped)"
            elif at < 0 or text.find(_SENTINEL, start) < at:
                lacks = f"it closes an assistant turn with none of the end-of-turn tokens {list(END_OF_TURN_TOKENS)}"
        if lacks is not None:
            raise TemplateUnsupportedError(
                f"{what} cannot carry a multi-turn tool conversation: {lacks}. Use a template that renders "
                "user/assistant turns in order (e.g. one of trl/chat_templates/*.jinja).")

    def _shows_tool_names(self) -> bool:
        name = "toolgym_probe_tool"
        try:
            text, start = self._after_dummy([{"role": "tool", "name": name, "content": _SENTINEL}], [name])
        except Exception:  # noqa: BLE001 - unknown: read the calls
            return True
        at = self._turn_end(text, start)
        return at < 0 or name in text[at:]

    def _renders(self, messages: list[dict]) -> bool:
        try:
            return _SENTINEL in self.render(messages)
        except Exception:  # noqa: BLE001 - a template rejects what it cannot render by raising
            return False

    def describe(self) -> dict[str, Any]:
        """What the probe found (for logs and the README table)."""
        return {"template": self.name, "system_role": self.system_role, "tool_role": self.tool_role,
                "structured_calls": self.needs_calls, "tool_names_shown": self.names_matter,
                "end_of_turn": list(self._ends),
                "generation_prompt": self.generation_prompt}


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    k = 0
    while k < n and a[k] == b[k]:
        k += 1
    return k
