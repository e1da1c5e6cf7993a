"""Benchmark agents behind one small, batched interface.

An agent gets the live episodes of a batch (:class:`Slot`: the unwrapped env, the observation, a
per-episode random generator, a deadline, a scratch dict) and returns one :class:`Action` (or
plain text) per slot. A new agent is a class with ``act`` registered with :func:`register_agent`::

    @register_agent("echo", help="repeats the question")
    class Echo(Agent):
        def act(self, slots):
            return [Action(text=s.observation[-1]["content"]) for s in slots]

Built in: ``oracle`` and ``random`` (calibration), ``naive-search`` / ``no-search`` (model-free
floors), ``no-retrieval`` and ``naive-rag`` (a model answers from the question, or from the
question plus the passages of one search), ``tool-call`` (a base model prompted with native
function calling), ``policy`` (a trained checkpoint or LoRA adapter) and ``openai`` (any
OpenAI-compatible endpoint, driving the env like ``tool-call``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from toolgym.benchmarks import models
from toolgym.envs.errors import unknown_name_error
from toolgym.envs.formats import HermesFormat, TagsFormat
from toolgym.envs.scripted import SCRIPTED_AGENTS


@dataclass
class Slot:
    """One live episode as an agent sees it.

    Attributes:
        env: the unwrapped env (its tools, format and, for oracles, its task).
        observation: the conversation to act on (the env's latest observation).
        index: the episode's index in the benchmark (stable across reruns).
        rng: a generator seeded from (benchmark seed, index): sampling agents stay reproducible
            whatever the batching.
        deadline: ``time.monotonic()`` by which the episode must end (None: no limit).
        state: scratch space an agent may keep across the turns of this episode.
    """

    env: Any
    observation: tuple
    index: int
    rng: np.random.Generator
    deadline: float | None = None
    state: dict = field(default_factory=dict)


@dataclass
class Action:
    """An agent's message for one slot, the tokens it cost, and the error that prevented it, if any
    (an error ends the episode with status ``error``)."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None


class Agent:
    """Base class: ``act(slots) -> list[Action | str]``, one per slot, in order.

    An agent whose replies come one at a time (requests to an endpoint) sets ``streams`` and yields
    them from ``act_as_completed`` as they come: the runner then steps each episode as its reply
    arrives, while the others are still being written.
    """

    name: ClassVar[str] = "agent"
    #: True when :meth:`act_as_completed` yields each reply as it comes rather than all at the end.
    streams: bool = False

    def __init__(self, **options: Any):
        """Built by :func:`make_agent` with the benchmark's model options; model-free agents ignore them."""

    def act(self, slots: Sequence[Slot]) -> list[Action | str]:
        raise NotImplementedError

    def act_as_completed(self, slots: Sequence[Slot]) -> Iterator[tuple[int, Action | str]]:
        """``(k, action for slots[k])`` for every slot, in the order the actions are ready."""
        yield from enumerate(self.act(slots))

    def describe(self) -> dict[str, Any]:
        """What identifies this agent's results (stored with them; a rerun must match)."""
        return {"agent": self.name}

    def close(self) -> None:
        """Release resources (servers, models) at the end of a benchmark."""


AgentFactory = Callable[..., Agent]
AGENTS: dict[str, tuple[AgentFactory, bool, str]] = {}


def register_agent(name: str, *, needs_model: bool = False, help: str = ""):
    """Class or factory decorator: ``make_agent(name, **options)`` builds it. Factories receive the
    benchmark's model options (``model``, ``engine``, ``temperature``, ...) as keywords."""

    def wrap(factory):
        AGENTS[name] = (factory, needs_model, help)
        if isinstance(factory, type) and issubclass(factory, Agent):
            factory.name = name
        return factory

    return wrap


def make_agent(name: str, **options: Any) -> Agent:
    """Build a registered agent; an unknown name suggests the closest one."""
    if name not in AGENTS:
        raise unknown_name_error("agent", name, AGENTS)
    factory, needs_model, _ = AGENTS[name]
    if needs_model and not options.get("model"):
        raise ValueError(f"agent {name!r} needs a model: pass --model PATH_OR_ID (or model= in Python).")
    return factory(**options)


def _tool(env, name: str, agent: str):
    for tool in env.tools:
        if tool.name == name:
            return tool
    raise ValueError(
        f"agent {agent!r} needs a {name!r} tool, but {type(env).__name__} has only "
        f"{[t.name for t in env.tools]}. Use the tool-call, policy, openai, oracle or random agent for this env."
    )


def write_call(env, tool_name: str, arguments: Mapping[str, Any]) -> str:
    """One call in the env's action format (tags when the tool takes one string, else hermes JSON)."""
    if env.format.name == "tags":
        tool = next((t for t in env.tools if t.name == tool_name), None)
        arg = TagsFormat.tag_argument(tool) if tool is not None else None
        if arg is not None and set(arguments) <= {arg}:
            return f"<{tool_name}>{arguments.get(arg, '')}</{tool_name}>"
    return "<tool_call>" + json.dumps({"name": tool_name, "arguments": dict(arguments)}, ensure_ascii=False) + "</tool_call>"


# -- calibration agents --------------------------------------------------------------------------------
@register_agent("oracle", help="what env.oracle_action() says: must reach the maximum score")
class OracleAgent(Agent):
    def act(self, slots):
        out = []
        for s in slots:
            try:
                out.append(s.env.oracle_action())
            except NotImplementedError as err:
                raise ValueError(f"the oracle agent needs envs with an oracle: {err}") from err
        return out


_WORD = re.compile(r"\w+", re.UNICODE)


@register_agent("random", help="random tool calls with words drawn from the conversation: scores about 0")
class RandomAgent(Agent):
    def act(self, slots):
        return [self._one(s) for s in slots]

    def _one(self, s: Slot) -> str:
        tool = s.env.tools[int(s.rng.integers(len(s.env.tools)))]
        words = _WORD.findall(" ".join(m["content"] for m in s.observation[1:])) or ["x"]
        args = {}
        for name, spec in tool.parameters.get("properties", {}).items():
            kind = spec.get("type")
            if kind == "integer":
                args[name] = int(s.rng.integers(0, 10))
            elif kind == "number":
                args[name] = float(s.rng.random())
            elif kind == "boolean":
                args[name] = bool(s.rng.integers(2))
            elif kind == "array":
                args[name] = []
            else:
                picks = s.rng.integers(len(words), size=int(s.rng.integers(1, 4)))
                args[name] = " ".join(words[int(k)] for k in picks)
        return write_call(s.env, tool.name, args)


class _Scripted(Agent):
    """Adapter for the envs' scripted agents (``act(env, observation) -> str``)."""

    script: ClassVar[str]

    def __init__(self, **options: Any):
        self._agent = SCRIPTED_AGENTS[self.script]()

    def act(self, slots):
        for s in slots:
            _tool(s.env, "answer", self.name)
        return [self._agent.act(s.env, s.observation) for s in slots]


@register_agent("naive-search", help="model-free: searches the question once, answers the first new title")
class NaiveSearchAgent(_Scripted):
    script = "naive-search"


@register_agent("no-search", help="model-free: answers 'unknown' at once (the floor)")
class NoSearchAgent(_Scripted):
    script = "no-search"


# -- model agents ----------------------------------------------------------------------------------------
def build_chat_model(*, model: Any, engine: str = "auto", tokenizer: Any = None, base_url: str | None = None,
                     api_key: str | None = None, temperature: float = 0.0, max_new_tokens: int = 256,
                     batch_size: int | None = None, native_tools: bool = True, max_retries: int = 2,
                     request_timeout: float = 120.0, request_options: dict | None = None,
                     chat_template: str | None = None, chat_template_kwargs: dict | None = None, **_: Any):
    """A :class:`~toolgym.benchmarks.models.ChatModel`: ``engine="openai"`` calls an endpoint (with
    ``request_options`` as more fields of each request), any other engine loads ``model`` locally
    (``"hf"``, ``"vllm"``, ``"auto"``)."""
    if hasattr(model, "chat") and not isinstance(model, str):
        return model  # already a ChatModel
    if engine == "openai":
        return models.OpenAIChatModel(str(model), base_url=base_url, api_key=api_key, temperature=temperature,
                                      max_tokens=max_new_tokens, native_tools=native_tools,
                                      max_retries=max_retries, request_timeout=request_timeout,
                                      concurrency=batch_size or 8, extra_body=request_options)
    return models.LocalChatModel(model, tokenizer, engine=engine, temperature=temperature,
                                 max_new_tokens=max_new_tokens, chat_template=chat_template,
                                 chat_template_kwargs=chat_template_kwargs, native_tools=native_tools)


class ModelAgent(Agent):
    """Shared by the model agents: holds the chat model and reports its settings."""

    def __init__(self, **options: Any):
        self.options = {k: v for k, v in options.items() if k in ("model", "engine", "temperature", "max_new_tokens")}
        if options.get("request_options"):  # they change the replies (sampling options); absent, old manifests match
            self.options["request_options"] = dict(options["request_options"])
        if not isinstance(self.options.get("model"), str):
            self.options["model"] = type(options.get("model")).__name__
        self.chat_model = build_chat_model(**options)

    def describe(self):
        return {"agent": self.name, **self.options}

    def _complete(self, slots, conversations, tools):
        return self.chat_model.chat(conversations, tools, [s.deadline for s in slots])


@register_agent("tool-call", needs_model=True, help="a base model prompted with native function calling")
class ToolCallAgent(ModelAgent):
    """The model writes every message itself: tools come from the env's schemas (hermes) or its
    system prompt (tags)."""

    def act(self, slots):
        comps = self._complete(slots, [s.observation for s in slots], [s.env.chat_tools for s in slots])
        return [Action(c.text, c.tokens_in, c.tokens_out, c.error) for c in comps]

    @property
    def streams(self) -> bool:  # type: ignore[override]
        return hasattr(self.chat_model, "chat_as_completed")  # an endpoint: each request returns on its own

    def act_as_completed(self, slots):
        if not self.streams:
            yield from super().act_as_completed(slots)
            return
        for k, c in self.chat_model.chat_as_completed([s.observation for s in slots], [s.env.chat_tools for s in slots],
                                                      [s.deadline for s in slots]):
            yield k, Action(c.text, c.tokens_in, c.tokens_out, c.error)


@register_agent("policy", needs_model=True, help="a trained checkpoint or LoRA adapter (HF generate; vLLM when installed)")
class PolicyAgent(ToolCallAgent):
    pass


@register_agent("openai", needs_model=True, help="any OpenAI-compatible chat endpoint (--base-url, $OPENAI_API_KEY)")
def _openai_agent(**options):
    agent = ToolCallAgent(**{**options, "engine": "openai"})
    agent.name = "openai"
    return agent


ANSWER_PROMPT = (
    "Answer the question. Reply with the answer only: a short phrase (a name, a date, a number, yes or no), "
    "no explanation."
)
_THINK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL)
_PREFIX = re.compile(r"^(final answer|answer)\s*[:\-]\s*", re.IGNORECASE)


def extract_answer(text: str) -> str:
    """The answer in a free-text reply: an ``<answer>`` tag, an ``answer`` tool call, or the first
    line. Never raises, in time linear in the text: the envs' own parsers find the tag (paired in
    one pass) and the call (every error ``json.loads`` raises is caught)."""
    text = _THINK.sub("", text)
    for tag, body in TagsFormat.tag_pairs(text):
        if tag == "answer":
            return body
    for call in HermesFormat().parse(text, ()).calls:
        if call.name == "answer" and isinstance(call.arguments, Mapping):
            try:
                return str(call.arguments.get("answer", "")).strip()
            except (ValueError, RecursionError):  # a number too long to print, or nesting too deep
                continue
    for line in text.splitlines():
        if line.strip():
            return _PREFIX.sub("", line.strip()).strip()
    return ""


def question_of(observation: Sequence[Mapping[str, str]]) -> str:
    """The task as the user first stated it (the first user message), without a 'Question:' label."""
    first = next((m["content"] for m in observation if m["role"] == "user"), "")
    return re.sub(r"^\s*question\s*:\s*", "", first, flags=re.IGNORECASE).strip()


@register_agent("no-retrieval", needs_model=True, help="the model answers from the question alone")
class NoRetrievalAgent(ModelAgent):
    def act(self, slots):
        for s in slots:
            _tool(s.env, "answer", self.name)
        convs = [[{"role": "system", "content": ANSWER_PROMPT}, {"role": "user", "content": question_of(s.observation)}]
                 for s in slots]
        comps = self._complete(slots, convs, [None] * len(slots))
        return [Action(write_call(s.env, "answer", {"answer": extract_answer(c.text)}), c.tokens_in, c.tokens_out,
                       c.error) for s, c in zip(slots, comps)]


@register_agent("naive-rag", needs_model=True, help="one search with the question, then the model answers from its passages")
class NaiveRAGAgent(ModelAgent):
    def act(self, slots):
        out: list[Action | None] = [None] * len(slots)
        ask = []
        for k, s in enumerate(slots):
            _tool(s.env, "answer", self.name)
            if not s.state.get("searched"):
                _tool(s.env, "search", self.name)
                s.state["searched"] = True
                out[k] = Action(write_call(s.env, "search", {"query": question_of(s.observation)}))
            else:
                ask.append(k)
        if ask:
            convs = []
            for k in ask:
                s = slots[k]
                passages = _strip_tags(s.observation[-1]["content"])
                user = f"Passages:\n{passages}\n\nQuestion: {question_of(s.observation)}"
                convs.append([{"role": "system", "content": ANSWER_PROMPT}, {"role": "user", "content": user}])
            comps = self._complete([slots[k] for k in ask], convs, [None] * len(ask))
            for k, c in zip(ask, comps):
                answer = extract_answer(c.text)
                out[k] = Action(write_call(slots[k].env, "answer", {"answer": answer}), c.tokens_in, c.tokens_out,
                                c.error)
        return out  # type: ignore[return-value]


def _strip_tags(text: str) -> str:
    return re.sub(r"</?(information|tool_response)>", "", text).strip()
