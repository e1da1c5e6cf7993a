"""The benchmark runner: batched, seeded, resumable episodes of one agent on toolgym envs.

    from toolgym.benchmarks import BenchConfig, run_benchmark
    results = run_benchmark(BenchConfig(agent="oracle", envs=["MultiHopQA-v0"], n=200, out="results/"))

Every finished episode is appended to ``OUT/episodes.jsonl`` as one line, flushed at once: an
interrupt loses nothing written, and a rerun with the same ``out`` skips the episodes already
there (keyed by agent label, env id and episode index). Episode ``i`` is reset with seed
``seed + i`` (and, for envs with a finite list of ``examples``, ``options={"index": i}``, so the
first ``n`` questions of a dataset are asked once each): results do not depend on the batch size.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from toolgym.benchmarks import official
from toolgym.benchmarks.agents import AGENTS, Action, Agent, Slot, make_agent
from toolgym.benchmarks.metrics import metric_values, normalized_titles, recall_of
from toolgym.benchmarks.models import check_extra_body
from toolgym.benchmarks.reports import build_results, write_reports
from toolgym.benchmarks.store import EpisodeStore, episode_key
from toolgym.benchmarks.suites import suite_envs
from toolgym.envs.batch import run_ahead, step_as_completed
from toolgym.envs.errors import unknown_name_error
from toolgym.envs.record import EpisodeLog, record_fields, result_fields
from toolgym.envs.registration import env_ids
from toolgym.envs.result import EpisodeResult

ENGINES = ("auto", "hf", "vllm", "openai")


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass
class BenchConfig:
    """What to run. Every field is also a ``toolgym bench`` flag (``env_kwargs`` is ``--env-kwargs``)."""

    agent: str = _help("agent name: " + ", ".join(AGENTS) if AGENTS else "agent name", default="oracle")
    envs: list[str] = _help("env ids to evaluate on", default_factory=lambda: ["MultiHopQA-v0"])
    suite: str | None = _help("a named set of envs instead of envs: search-r1 (NQ, TriviaQA, PopQA, HotpotQA, "
                              "2Wiki, MuSiQue, Bamboogle over one corpus) or agent-r1", default=None)
    corpus: str | None = _help("one corpus for every env (JSONL file or Lucene index); same as "
                               "env_kwargs corpus=PATH", default=None)
    n: int = _help("episodes per env (datasets: the first n questions)", default=100)
    out: str = _help("results directory (episodes.jsonl, results.json, results.md, plots/, predictions/)",
                     default="results")
    model: str | None = _help("model path, hub id or endpoint model name (model agents)", default=None)
    name: str | None = _help("row label in the tables (default: agent, plus the model's name)", default=None)
    engine: str = _help("model engine: auto (vLLM if installed with a GPU, else hf), hf, vllm, openai",
                        default="auto")
    base_url: str | None = _help("OpenAI-compatible base URL (default $OPENAI_BASE_URL)", default=None)
    api_key: str | None = _help("API key (default $OPENAI_API_KEY)", default=None)
    temperature: float = _help("sampling temperature of model agents (0: greedy)", default=0.0)
    max_new_tokens: int = _help("tokens per model reply", default=256)
    native_tools: bool = _help("send tool schemas and read structured tool calls (openai); local models: render "
                               "and read calls in the model family's own syntax", default=True)
    chat_template: str | None = _help("local models: a chat template (TRL's name such as gemma, or a .jinja file) "
                                      "for a model that has none, e.g. a base model's GGUF", default=None)
    chat_template_kwargs: dict[str, Any] = _help("local models: apply_chat_template kwargs (e.g. enable_thinking=true)",
                                                 default_factory=dict)
    max_retries: int = _help("openai: retries of a failed request (429, 5xx, connection)", default=2)
    request_timeout: float = _help("openai: seconds one request may take (the episode's time limit caps it too)",
                                   default=120.0)
    request_options: dict[str, Any] = _help(
        "openai: more fields of every request, for the server's own options (e.g. repeat_penalty=1.0 for "
        "llama.cpp, whose default 1.1 the local engine does not apply)", default_factory=dict)
    seed: int = _help("episode i is reset with seed + i; also seeds random agents and the bootstrap", default=0)
    batch_size: int = _help("episodes stepped together (one batched agent call per turn)", default=16)
    time_limit: float | None = _help(
        "seconds of an episode's own time (the model calls it waited on and its tool calls; not the wait for a "
        "batch slot or for other episodes' tools) after which it ends with status 'timeout', keeping what it did",
        default=900.0)
    env_kwargs: dict[str, Any] = _help(
        "gym.make keyword arguments for every env; a key 'ENV_ID:name' applies to that env only",
        default_factory=dict)
    progress: bool = _help("show a progress bar", default=True)
    reports: bool = _help("write results.json/.md, plots and prediction files at the end", default=True)

    def __post_init__(self):
        if isinstance(self.envs, str):
            self.envs = [e.strip() for e in self.envs.split(",") if e.strip()]
        if self.suite is not None:
            if self.envs not in ([], ["MultiHopQA-v0"]):
                raise ValueError(f"give a suite or envs, not both: suite={self.suite!r}, envs={self.envs}.")
            self.envs = suite_envs(self.suite)
        if self.corpus is not None:
            if "corpus" in self.env_kwargs and self.env_kwargs["corpus"] != self.corpus:
                raise ValueError(f"corpus={self.corpus!r} and env_kwargs corpus={self.env_kwargs['corpus']!r} differ: "
                                 "give one.")
            self.env_kwargs = {"corpus": self.corpus, **self.env_kwargs}
        if not self.envs:
            raise ValueError("envs is empty: give at least one env id, e.g. envs=['MultiHopQA-v0'].")
        if self.agent not in AGENTS:
            raise unknown_name_error("agent", self.agent, AGENTS)
        if self.engine not in ENGINES:
            raise unknown_name_error("engine", self.engine, ENGINES)
        for name in ("n", "batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.time_limit is not None and self.time_limit <= 0:
            raise ValueError(f"time_limit must be > 0 seconds (or None for no limit), got {self.time_limit}.")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}.")
        if self.request_timeout <= 0:
            raise ValueError(f"request_timeout must be > 0 seconds, got {self.request_timeout}.")
        self.request_options = check_extra_body(self.request_options)
        if self.request_options and "openai" not in (self.agent, self.engine):
            raise ValueError(f"request_options {self.request_options} go to an OpenAI-compatible endpoint, but agent "
                             f"{self.agent!r} with engine {self.engine!r} runs a local model: use --agent openai (or "
                             "--engine openai), or drop them.")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.model:
            return f"{self.agent}:{Path(str(self.model).rstrip('/')).name}"
        return self.agent

    def kwargs_for(self, env_id: str) -> dict[str, Any]:
        common = {k: v for k, v in self.env_kwargs.items() if ":" not in k}
        specific = {k.split(":", 1)[1]: v for k, v in self.env_kwargs.items() if k.split(":", 1)[0] == env_id and ":" in k}
        return {**common, **specific}


def _check_manifest(out: Path, label: str, description: dict[str, Any]) -> None:
    """A label means one agent configuration: a rerun into the same directory must match it."""
    path = out / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    previous = manifest.get(label)
    if previous is not None and previous != description:
        changed = sorted(k for k in set(previous) | set(description) if previous.get(k) != description.get(k))
        raise ValueError(
            f"{out} already holds results labelled {label!r} from another configuration (differs in {changed}: "
            f"{ {k: previous.get(k) for k in changed} } before, { {k: description.get(k) for k in changed} } now). "
            "Pass another --name, or another --out."
        )
    manifest[label] = description
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, path)


# -- running -----------------------------------------------------------------------------------------------
@dataclass
class _Live:
    slot: Slot
    seed: int
    start: float
    info: dict
    dataset: str | None
    gold: frozenset  # normalised titles of the gold supporting passages
    ret: float = 0.0
    seconds: float = 0.0  # the episode's own time: its model calls and its tool calls
    tokens_in: int = 0
    tokens_out: int = 0
    turn_rewards: list = field(default_factory=list)
    turn_recall: list = field(default_factory=list)
    log: EpisodeLog = field(default_factory=EpisodeLog)  # the conversation, step by step (envs/record.py)
    pending: Action | None = None  # the action of this turn until the env has stepped it


def _episodes_for(env, n: int) -> tuple[int, bool]:
    """How many episodes to run, and whether they are indexed questions of a finite dataset."""
    examples = getattr(env.unwrapped, "examples", None)
    if isinstance(examples, Sequence) and len(examples) > 0 and getattr(env.unwrapped, "dataset", None) != "synthetic":
        return min(n, len(examples)), True
    return n, False


def run_benchmark(config: BenchConfig, agent: Agent | None = None) -> dict[str, Any]:
    """Run ``config.agent`` (or the given ``agent`` instance) on every env; return the summary that
    ``results.json`` holds (all agents found in ``config.out``, not only this one).

    Resumes: episodes already in ``OUT/episodes.jsonl`` for this label are not run again.
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    own_agent = agent is None
    if agent is None:
        agent = make_agent(config.agent, model=config.model, engine=config.engine, base_url=config.base_url,
                           api_key=config.api_key, temperature=config.temperature,
                           max_new_tokens=config.max_new_tokens, batch_size=config.batch_size,
                           native_tools=config.native_tools, max_retries=config.max_retries,
                           request_timeout=config.request_timeout, request_options=config.request_options,
                           chat_template=config.chat_template, chat_template_kwargs=config.chat_template_kwargs)
    label = config.label
    _check_manifest(out, label, {**agent.describe(), "seed": config.seed, "env_kwargs": config.env_kwargs})
    store = EpisodeStore(out / "episodes.jsonl")
    done = {episode_key(r["agent"], r["env"], r["index"]): r for r in store.load()}
    try:
        for env_id in config.envs:
            if env_id not in gym.registry:
                raise unknown_name_error("env id", env_id, env_ids())
            _run_env(env_id, config, agent, label, store, done)
    finally:
        store.close()
        if own_agent:
            agent.close()
    if config.reports:
        return write_reports(out, seed=config.seed)
    return build_results(store.load(), seed=config.seed)


def _run_env(env_id: str, config: BenchConfig, agent: Agent, label: str, store: EpisodeStore,
             done: dict[str, dict]) -> None:
    kwargs = config.kwargs_for(env_id)
    first = gym.make(env_id, **kwargs)
    n, indexed = _episodes_for(first, config.n)
    queue = deque(i for i in range(n) if episode_key(label, env_id, i) not in done)
    finished = [r for r in done.values() if r["agent"] == label and r["env"] == env_id and r["index"] < n]
    if not queue:
        first.close()
        return
    envs = [first] + [gym.make(env_id, **kwargs) for _ in range(min(config.batch_size, len(queue)) - 1)]
    slots: list[_Live | None] = [None] * len(envs)
    bar = _progress(config, label, env_id, n, finished)
    try:
        while queue or any(slots):
            for k, live in enumerate(slots):
                if live is None and queue:
                    slots[k] = _start(envs[k], queue.popleft(), config, indexed)
            active = [k for k, live in enumerate(slots) if live is not None]
            for k in active:
                slots[k].slot.deadline = _deadline(slots[k], config)
            if getattr(agent, "streams", False):  # each env steps as its reply arrives
                actions, outs = _act_and_step_as_completed(agent, label, [envs[k] for k in active],
                                                           [slots[k] for k in active], config)
            else:
                began = time.monotonic()
                actions = agent.act([slots[k].slot for k in active])
                if len(actions) != len(active):
                    raise ValueError(f"agent {label!r} returned {len(actions)} actions for {len(active)} episodes")
                stepped = [(envs[k], a if isinstance(a, str) else a.text) for k, a in zip(active, actions)
                           if isinstance(a, str) or a.error is None]
                run_ahead([env for env, _ in stepped], [text for _, text in stepped])  # the turn's searches: one batch
                for k in active:  # each waited on the one batched model call and the turn's one batch of searches
                    slots[k].seconds += time.monotonic() - began
                outs = [None] * len(active)
            for k, action, out in zip(active, actions, outs):
                record = _advance(envs[k], slots[k], action, config, label, env_id, out)
                if record is not None:
                    store.append(record)
                    finished.append(record)
                    slots[k] = None
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(_running(finished), refresh=False)
    finally:
        if bar is not None:
            bar.close()
        for env in envs:
            env.close()


def _start(env, index: int, config: BenchConfig, indexed: bool) -> _Live:
    seed = config.seed + index
    start = time.monotonic()
    obs, info = env.reset(seed=seed, options={"index": index} if indexed else None)
    base = env.unwrapped
    example = getattr(base, "example", None)
    slot = Slot(env=base, observation=obs, index=index, rng=np.random.default_rng([config.seed, index]))
    return _Live(slot=slot, seed=seed, start=start, info=dict(info), dataset=getattr(base, "dataset", None),
                 gold=normalized_titles(getattr(example, "supporting_titles", None)))


def _act_and_step_as_completed(agent: Agent, label: str, envs: list, lives: list[_Live],
                               config: BenchConfig) -> tuple[list, list]:
    """The agent's actions for ``lives`` and the step outputs of the envs, each env stepped as its
    action arrives (the tool calls of what has arrived meanwhile run together); an output is None
    where the action is not stepped (an error, the time limit passed: ``_advance`` records it)."""
    actions: list[Action | None] = [None] * len(lives)
    began = time.monotonic()

    def arrivals():
        for j, action in agent.act_as_completed([live.slot for live in lives]):
            lives[j].seconds += time.monotonic() - began  # its own request, sent with the others
            if not (isinstance(j, int) and 0 <= j < len(lives)) or actions[j] is not None:
                raise ValueError(f"agent {label!r} gave an action for slot {j!r} twice or out of range "
                                 f"(0-{len(lives) - 1}); give one per slot")
            actions[j] = Action(action) if isinstance(action, str) else action
            if actions[j].error is None and not _late(lives[j], config):
                yield j, actions[j].text

    outs = step_as_completed(envs, arrivals())
    if any(a is None for a in actions):
        got = sum(a is not None for a in actions)
        raise ValueError(f"agent {label!r} returned {got} actions for {len(lives)} episodes")
    return actions, outs


def _deadline(live: _Live, config: BenchConfig) -> float | None:
    """When the episode's next model call must be done by: what is left of its own time from now."""
    return None if config.time_limit is None else time.monotonic() + config.time_limit - live.seconds


def _late(live: _Live, config: BenchConfig) -> bool:
    return config.time_limit is not None and live.seconds > config.time_limit


def _advance(env, live: _Live, action: Action | str, config: BenchConfig, label: str, env_id: str,
             out: tuple | None = None):
    """Step one episode with the agent's action (or take ``out``, the step already taken); return
    its record when it has ended."""
    if isinstance(action, str):
        action = Action(action)
    live.tokens_in += action.tokens_in
    live.tokens_out += action.tokens_out
    live.pending = action  # stored as an unstepped action if the episode ends before its step
    if out is None and _late(live, config):
        reason = f"the episode's own time passed {config.time_limit} s"
        return _record(live, label, env_id, "timeout", f"{reason}: {action.error}" if action.error else reason)
    if out is None and action.error is not None:
        return _record(live, label, env_id, "error", action.error)
    began = time.monotonic()
    obs, reward, terminated, truncated, info = env.step(action.text) if out is None else out
    live.seconds += time.monotonic() - began
    live.log.step(env, live.slot.observation, action.text, obs, reward, info, tokens_in=action.tokens_in,
                  tokens_out=action.tokens_out, agent_seconds=getattr(action, "seconds", None))
    live.pending = None
    live.ret += float(reward)
    live.info = dict(info)
    live.slot.observation = obs
    live.turn_rewards.append(float(reward))
    # The env's own count (by paragraph where it matches by paragraph); None: no gold evidence.
    recall = info["evidence_recall"] if "evidence_recall" in info else recall_of(info.get("found_supporting"), live.gold)
    if recall is not None:
        live.turn_recall.append(recall)
    if terminated or truncated:
        return _record(live, label, env_id, "terminated" if terminated else "truncated", None)
    if _late(live, config):
        return _record(live, label, env_id, "timeout", f"the episode's own time passed {config.time_limit} s")
    return None


def _record(live: _Live, label: str, env_id: str, status: str, error: str | None) -> dict[str, Any]:
    info = live.info
    result = EpisodeResult.from_info(info)  # None: the episode was stopped from outside (timeout, error)
    if live.pending is not None:
        action, live.pending = live.pending, None
        live.log.unstepped(live.slot.observation, action.text, error, tokens_in=action.tokens_in,
                           tokens_out=action.tokens_out, agent_seconds=getattr(action, "seconds", None))
    return {
        **record_fields("bench"),
        "agent": label,
        "env": env_id,
        "index": live.slot.index,
        "seed": live.seed,
        "dataset": live.dataset,
        "id": info.get("question_id", next((v for k, v in info.items() if k.endswith("_id")), None)),
        **result_fields(result),  # result, prediction, gold, em, f1, subem (the QA extras), success
        "return": live.ret,
        "evidence_recall": live.turn_recall[-1] if live.turn_recall else recall_of(None, live.gold),
        "found_supporting": info.get("found_supporting"),
        "tool_calls": int(info.get("tool_calls", 0)),
        "turns": int(info.get("turn", len(live.turn_rewards))),
        "tokens_in": live.tokens_in,
        "tokens_out": live.tokens_out,
        "wall_time": time.monotonic() - live.start,
        "seconds": live.seconds,
        "status": status,
        "truncated_by": info.get("truncated_by"),
        "error": error,
        "turn_rewards": live.turn_rewards,
        "turn_recall": live.turn_recall,
        **official.episode_fields(live.slot.env, info),
        **live.log.fields(live.slot.observation),
    }


def _running(records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    out = {}
    for key, short in (("em", "EM"), ("f1", "F1"), ("success", "succ")):
        values = metric_values(records, key)
        if values:
            out[short] = f"{np.mean(values):.3f}"
    return out


def _progress(config: BenchConfig, label: str, env_id: str, total: int, finished: list):
    if not config.progress:
        return None
    from tqdm.auto import tqdm  # slow to import (notebook detection); only a shown bar needs it

    bar = tqdm(total=total, initial=len(finished), desc=f"{label} | {env_id}", unit="ep", dynamic_ncols=True)
    if finished:
        bar.set_postfix(_running(finished), refresh=False)
    return bar


def config_fields() -> list[tuple[str, Any, str]]:
    """(name, default, help) of every BenchConfig field, for the CLI."""
    out = []
    for f in fields(BenchConfig):
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        out.append((f.name, default, f.metadata.get("help", "")))
    return out


def config_dict(config: BenchConfig) -> dict[str, Any]:
    return asdict(config)
