"""Chat models the benchmark agents call: a local HF/vLLM model or any OpenAI-compatible endpoint.

One batched interface, :class:`ChatModel`: conversations in (chat messages, the env's tool schemas,
a deadline each), one :class:`Completion` out per conversation, with token counts. A failure of one
request is a ``Completion`` with ``error`` set, never an exception, so one bad request does not
stop a benchmark.

The local model goes through the generation layer the trainer uses (``toolgym.generation``): the
same chat-template handling (roles the template lacks, structured calls where it needs them), the
same backend and stop tokens. It speaks the env's hermes text to the env and the model family's own
call syntax to the model, as an OpenAI-compatible server with a tool parser does: past calls are
rendered as structured ``tool_calls``, and a reply in the family's syntax is read back with its
response parser and handed to the env as ``<tool_call>`` JSON.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from toolgym.envs.deps import require
from toolgym.envs.errors import unknown_name_error
from toolgym.envs.formats import HermesFormat
from toolgym.generation import ChatTemplate, Generation, HFBackend, NativeFormat
from toolgym.generation.models import load_model, load_tokenizer, resolve_model


@dataclass
class Completion:
    """One reply: its text, tokens read and written, and the error that prevented it, if any."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None


class ChatModel(Protocol):
    def chat(self, conversations: Sequence[Sequence[Mapping[str, str]]], tools: Sequence[list | None],
             deadlines: Sequence[float | None]) -> list[Completion]:
        """One completion per conversation. ``deadlines`` are ``time.monotonic()`` values (None: no limit)."""
        ...


# -- a local model: transformers generate, or vLLM ------------------------------------------------------
class LocalChatModel:
    """A causal LM with a chat template, loaded from a path or hub id (a LoRA adapter directory works:
    its base model is loaded and the adapter applied).

    Args:
        model: a ``.gguf`` file or a directory holding one, a saved model, a LoRA adapter directory,
            a hub id (:func:`toolgym.generation.models.load_model`), or an already loaded model (then
            pass ``tokenizer``).
        tokenizer: defaults to the one saved with ``model``.
        engine: ``"hf"`` (transformers ``generate``), ``"vllm"``, or ``"auto"`` (vLLM when it is
            installed and a GPU is present, else hf).
        temperature: 0 decodes greedily.
        max_new_tokens: tokens per reply.
        chat_template: TRL's template name or a ``.jinja`` file, for a model without one (a base
            model's GGUF) or to replace its own.
        chat_template_kwargs: passed to ``apply_chat_template`` (e.g. ``{"enable_thinking": False}``).
        native_tools: render past ``<tool_call>`` blocks as structured calls and read replies in the
            model family's own call syntax (where the template has one); False keeps hermes text
            both ways.

    Raises:
        toolgym.generation.TemplateUnsupportedError: the chat template cannot carry a multi-turn
            tool conversation.
    """

    def __init__(self, model: Any, tokenizer: Any = None, *, engine: str = "auto", temperature: float = 0.0,
                 max_new_tokens: int = 256, chat_template: str | None = None,
                 chat_template_kwargs: Mapping[str, Any] | None = None, native_tools: bool = True):
        if engine not in ("auto", "hf", "vllm"):
            raise unknown_name_error("engine", engine, ("auto", "hf", "vllm"))
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.max_new_tokens = max_new_tokens
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        if engine == "auto":
            engine = "vllm" if isinstance(model, (str, Path)) and _vllm_usable() else "hf"
        self.engine = engine
        if engine == "vllm":
            self.model, self.tokenizer = None, tokenizer or load_tokenizer(model, chat_template=chat_template)
            self.backend = VLLMEngineBackend(resolve_model(model), temperature=temperature)
        else:
            if isinstance(model, (str, Path)):
                model, loaded_tok = load_model(model, chat_template=chat_template, merge_adapter=True)
                tokenizer = tokenizer or loaded_tok
            if tokenizer is None:
                raise ValueError("pass tokenizer= with an already loaded model")
            model.eval()
            self.model, self.tokenizer = model, tokenizer
            self.backend = HFBackend(model, tokenizer, temperature=temperature, top_k=0)
        self.template = ChatTemplate(self.tokenizer, self.chat_template_kwargs)
        self.stop_ids = self.template.stop_ids
        self.native = NativeFormat(self.tokenizer, self.chat_template_kwargs) if native_tools else None
        if self.native is not None and self.native.syntax != "native":
            self.native = None  # the family has no call syntax of its own: hermes text both ways
        self.context_limit = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)

    def _prompt(self, messages, schema) -> str:
        if self.native is not None:  # past calls as structured tool_calls, rendered in the family's syntax
            messages = to_openai_messages(messages, native=True)
            for m in messages:
                if m["role"] == "assistant":
                    m["content"] = m.get("content") or ""
                    for call in m.get("tool_calls", []):
                        call["function"]["arguments"] = _json_or_text(call["function"]["arguments"])
        return self.template.prompt(messages, schema, parse_calls=_hermes_calls)

    def _reply(self, text: str, schema) -> str:
        """The model's reply as the env's hermes text (its own call syntax read with its response parser)."""
        if self.native is None:
            return text
        message = self.native.parse_message(text)
        calls = message.get("tool_calls") or []
        if not calls:
            return text
        parts = [message.get("content") or ""] + [
            "<tool_call>" + json.dumps({"name": c["function"]["name"], "arguments": c["function"].get("arguments", {})},
                                       ensure_ascii=False) + "</tool_call>" for c in calls]
        return "".join(parts)

    def chat(self, conversations, tools, deadlines) -> list[Completion]:
        prompts: list[list[int] | None] = []
        out: list[Completion | None] = []
        for messages, schema in zip(conversations, tools):
            text = self._prompt(messages, schema)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if self.context_limit and len(ids) + self.max_new_tokens > self.context_limit:
                prompts.append(None)
                out.append(Completion("", len(ids), 0, error=(
                    f"the prompt has {len(ids)} tokens; with max_new_tokens={self.max_new_tokens} it exceeds the "
                    f"model's context of {self.context_limit}. Lower max_new_tokens or the env's max_context_chars.")))
            else:
                prompts.append(ids)
                out.append(None)
        todo = [i for i, p in enumerate(prompts) if p is not None]
        gens = self.backend.generate([prompts[i] for i in todo], self.max_new_tokens) if todo else []
        for i, gen in zip(todo, gens):
            ids = list(gen.ids)
            body = ids[:-1] if ids and ids[-1] in self.stop_ids else ids
            text = self.tokenizer.decode(body, skip_special_tokens=False, clean_up_tokenization_spaces=False)
            out[i] = Completion(self._reply(text, tools[i]), len(prompts[i]), len(ids))
        return out  # type: ignore[return-value]


def _json_or_text(arguments: Any) -> Any:
    try:
        return json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        return arguments


def _hermes_calls(text: str) -> tuple[str, list[tuple[str, Any]]]:
    """Hermes ``<tool_call>`` blocks of ``text`` as (content, [(name, arguments)]) for templates
    that need structured calls (gpt-oss)."""
    calls = HermesFormat().parse(text, []).calls
    return _TOOL_CALL.sub("", text).strip(), [(c.name, c.arguments) for c in calls]


def _vllm_usable() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch  # extra train

    return torch.cuda.is_available()


class VLLMEngineBackend:
    """``GenerationBackend`` over an offline ``vllm.LLM`` (the trainer's ``VLLMBackend`` needs a
    GRPOTrainer; a benchmark has none). Imported lazily: ``pip install 'toolgym[vllm]'``."""

    def __init__(self, model: str, *, temperature: float = 0.0, **llm_kwargs: Any):
        vllm = require("vllm", "vllm")
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, **llm_kwargs)
        self.temperature = temperature

    def any_alive(self, alive: bool) -> bool:
        return alive

    def generate(self, prompts, max_new_tokens):
        params = self._vllm.SamplingParams(temperature=self.temperature, max_tokens=max_new_tokens, logprobs=0)
        outputs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False)
        gens = []
        for o in outputs:
            c = o.outputs[0]
            lps = [next(iter(d.values())).logprob if d else 0.0 for d in (c.logprobs or [{}] * len(c.token_ids))]
            gens.append(Generation(list(c.token_ids), lps))
        return gens


# -- any OpenAI-compatible endpoint --------------------------------------------------------------------
_TOOL_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIChatModel:
    """``POST {base_url}/chat/completions`` over plain HTTP (vLLM serve, SGLang, hosted APIs).

    Args:
        model: the model name the server expects.
        base_url: e.g. ``http://localhost:8000/v1``; default ``$OPENAI_BASE_URL`` or the OpenAI API.
        api_key: default ``$OPENAI_API_KEY`` (sent as a bearer token when set).
        temperature, max_tokens: sampling parameters of every request.
        native_tools: send the env's tool schemas as ``tools=`` and turn the server's structured
            ``tool_calls`` back into ``<tool_call>`` text (for ``hermes`` envs). False sends plain
            text only; the env's system prompt describes the tools either way.
        max_retries: retries of a request that failed with a transient status (429, 5xx) or a
            connection error, with exponential back-off, within the episode's deadline.
        request_timeout: seconds one request may take (further capped by the episode's deadline).
        concurrency: requests in flight at once.
        extra_body: more fields of every request, for the server's own sampling options (e.g.
            llama.cpp's ``{"repeat_penalty": 1.0}``: its default 1.1 is a penalty the local engine does not apply).
            The fields toolgym sets itself are refused (:data:`OWN_FIELDS` names their options).
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 temperature: float = 0.0, max_tokens: int = 256, native_tools: bool = True,
                 max_retries: int = 2, request_timeout: float = 120.0, concurrency: int = 8,
                 backoff: float = 0.5, extra_body: Mapping[str, Any] | None = None):
        self._requests = require("requests", "bench")
        self.extra_body = check_extra_body(extra_body)
        if request_timeout <= 0:
            raise ValueError(f"request_timeout must be > 0 seconds, got {request_timeout}.")
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.temperature, self.max_tokens, self.native_tools = temperature, max_tokens, native_tools
        self.max_retries, self.request_timeout, self.backoff = max_retries, request_timeout, backoff
        self.concurrency = max(1, concurrency)
        self._session = self._requests.Session()

    def chat(self, conversations, tools, deadlines) -> list[Completion]:
        out: list[Completion | None] = [None] * len(conversations)
        for k, completion in self.chat_as_completed(conversations, tools, deadlines):
            out[k] = completion
        return out  # type: ignore[return-value]

    def chat_as_completed(self, conversations, tools, deadlines) -> Iterator[tuple[int, Completion]]:
        """``(k, completion of conversation k)`` as each reply comes (``concurrency`` requests out at
        once): the bench runner steps an episode's env while the other requests are still out."""
        jobs = list(zip(conversations, tools, deadlines, strict=True))
        if len(jobs) <= 1:
            yield from ((k, self._one(*job)) for k, job in enumerate(jobs))
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(jobs))) as pool:
            futures = {pool.submit(self._one, *job): k for k, job in enumerate(jobs)}
            for future in as_completed(futures):
                yield futures[future], future.result()

    def _payload(self, messages, schema) -> dict[str, Any]:
        native = self.native_tools and bool(schema)
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(messages, native=native),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if native:
            payload["tools"] = list(schema)
        return {**payload, **self.extra_body}  # no overlap: check_extra_body refused toolgym's own fields

    def _one(self, messages, schema, deadline) -> Completion:
        payload = self._payload(messages, schema)
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        error = "no request made"
        for attempt in range(self.max_retries + 1):
            timeout = self.request_timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    return Completion("", error=f"time limit reached before the reply ({error})")
            try:
                response = self._session.post(f"{self.base_url}/chat/completions", json=payload, headers=headers,
                                              timeout=timeout)
            except self._requests.Timeout:
                return Completion("", error=f"no reply within {timeout:.1f} s from {self.base_url} (request_timeout "
                                            f"{self.request_timeout:g} s, or the episode's time limit): a slow server "
                                            "needs a larger --request-timeout or --time-limit")
            except self._requests.ConnectionError as err:
                error = unreachable_error(self.base_url, err)
            else:
                if response.status_code == 200:
                    return self._parse(response)
                error = http_error(self.base_url, response.status_code, response.text)
                if response.status_code not in RETRY_STATUS:
                    return Completion("", error=error)
            if attempt < self.max_retries:
                pause = self.backoff * 2**attempt
                if deadline is not None and time.monotonic() + pause >= deadline:
                    break
                time.sleep(pause)
        return Completion("", error=f"{error} (after {self.max_retries + 1} attempts)")

    def _parse(self, response) -> Completion:
        """A 200 reply: a Chat Completions body, or a Completion whose error says what came instead."""
        try:
            body = response.json()
        except ValueError:
            kind = response.headers.get("Content-Type") or "no Content-Type"
            return Completion("", error=(
                f"{self.base_url}/chat/completions answered HTTP 200 with a body that is not JSON ({kind}): "
                f"{response.text[:200]!r}. Is --base-url the API's root (for most servers it ends in /v1)?"))
        if isinstance(body, Mapping) and "choices" not in body and "error" in body:
            return Completion("", error=f"{self.base_url} answered HTTP 200 with an error: {_error_message(body)}")
        try:
            return parse_chat_response(body)
        except (KeyError, IndexError, TypeError) as err:
            return Completion("", error=(
                f"{self.base_url} answered HTTP 200 without a Chat Completions reply (missing {err}): "
                f"{response.text[:200]!r}. The server must speak POST /chat/completions."))


#: Request fields the client sets itself -> the option that sets them (``extra_body`` may not).
OWN_FIELDS = {"model": "model (--model)", "messages": "the env's conversation", "tools": "native_tools (--native-tools)",
              "temperature": "temperature (--temperature)", "max_tokens": "max_tokens (--max-new-tokens)"}


def check_extra_body(extra_body: Mapping[str, Any] | None) -> dict[str, Any]:
    """``extra_body`` as a dict of JSON values, or ValueError saying which field cannot go in it and why."""
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping):
        raise ValueError(f"request options must be a mapping of request fields, got {type(extra_body).__name__} "
                         f"{extra_body!r}; e.g. {{'repeat_penalty': 1.0}} (--request-options repeat_penalty=1.0)")
    clash = sorted(k for k in extra_body if k in OWN_FIELDS)
    if clash:
        raise ValueError(f"request options {clash} are fields toolgym sets itself; set them with "
                         f"{', '.join(OWN_FIELDS[k] for k in clash)} instead.")
    try:
        json.dumps(dict(extra_body))
    except (TypeError, ValueError) as err:
        raise ValueError(f"request options must be JSON values: {err} in {dict(extra_body)!r}") from None
    return dict(extra_body)


def unreachable_error(base_url: str, err: Exception) -> str:
    """Why the connection failed, in a line (requests nests the OS's reason deep in its message)."""
    reason = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(err))
    reason = reason.group(1).strip() if reason else str(err)[:200]
    return (f"cannot connect to {base_url} ({reason}): is the server running and listening there? Start it "
            "(e.g. python -m llama_cpp.server --model FILE.gguf --port 8000) or pass its address as --base-url.")


def http_error(base_url: str, status: int, text: str) -> str:
    """An error reply in a line: the server's own message and, where the status tells, the fix."""
    try:
        message = _error_message(json.loads(text))
    except ValueError:
        message = text[:300]
    hint = {401: " Pass --api-key or set $OPENAI_API_KEY.", 403: " Check the API key's permissions.",
            404: " Check --base-url: the server's API root, usually ending in /v1."}.get(status, "")
    return f"HTTP {status} from {base_url}: {message.rstrip('.')}.{hint}"


def _error_message(body: Any) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message": ...}}``), else the body."""
    error = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(error, Mapping) and error.get("message"):
        return str(error["message"])[:300]
    return json.dumps(error)[:300] if not isinstance(error, str) else error[:300]


def to_openai_messages(messages: Sequence[Mapping[str, str]], *, native: bool) -> list[dict[str, Any]]:
    """The env's conversation in the Chat Completions schema.

    Native: an assistant message's ``<tool_call>`` blocks become structured ``tool_calls`` with ids,
    and the env's ``tool`` messages answer them in order (a call the env skipped gets no result, so
    it is left out: the API rejects unanswered calls). Text: tool results become user messages in
    ``<tool_response>`` tags, as Qwen's template shows them.
    """
    out: list[dict[str, Any]] = []
    pending: list[str] = []  # ids of the last assistant message's calls not yet answered
    for turn, m in enumerate(messages):
        role, content = m["role"], m["content"]
        if role == "assistant" and native:
            calls, text = [], _TOOL_CALL.sub("", content).strip()
            for k, block in enumerate(_TOOL_CALL.findall(content)):
                try:
                    payload = json.loads(block)
                    name, args = payload["name"], payload.get("arguments", {})
                except (ValueError, KeyError, TypeError):
                    continue
                calls.append({"id": f"call_{turn}_{k}", "type": "function",
                              "function": {"name": str(name), "arguments": json.dumps(args, ensure_ascii=False)}})
            n_results = 0
            for later in messages[turn + 1:]:
                if later["role"] != "tool":
                    break
                n_results += 1
            calls = calls[:n_results]
            message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else "")}
            if calls:
                message["tool_calls"] = calls
            out.append(message)
            pending = [c["id"] for c in calls]
        elif role == "tool":
            if native and pending:
                out.append({"role": "tool", "tool_call_id": pending.pop(0), "content": content})
            else:
                out.append({"role": "user", "content": f"<tool_response>\n{content}\n</tool_response>"})
        else:
            out.append({"role": role, "content": content})
            pending = []
    return out


def parse_chat_response(body: Mapping[str, Any]) -> Completion:
    """A Chat Completions reply as a Completion; structured tool calls become ``<tool_call>`` text."""
    message = body["choices"][0]["message"]
    text = message.get("content") or ""
    for call in message.get("tool_calls") or []:
        fn = call["function"]
        args = fn.get("arguments") or "{}"
        try:
            args = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            pass  # the env reports the malformed arguments to the agent
        text += "<tool_call>" + json.dumps({"name": fn["name"], "arguments": args}, ensure_ascii=False) + "</tool_call>"
    usage = body.get("usage") or {}
    return Completion(text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
