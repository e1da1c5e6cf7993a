"""The training config: one YAML file (plus ``key=value`` overrides) for ``toolgym train``.

    model: Qwen/Qwen2.5-3B-Instruct        # a path or a hub id
    envs:
      - id: MultiHopQA-v0
        kwargs: {dataset: hotpotqa, format: hermes}
        weight: 1.0
    algorithm: grpo                       # or ppo, rloo, reinforce_pp, reinforce_pp_baseline
    credit: outcome                       # or step, gigpo (with gamma, step_weight, step_similarity)
    lora: {r: 16, alpha: 32}
    grpo:                                 # trl.GRPOConfig fields, passed through unchanged
      learning_rate: 1.0e-6
      num_generations: 8
    ppo: {vf_coef: 0.5}                   # algorithm ppo and the critic-free estimators

The algorithm's settings (:mod:`toolgym.trainers.algorithms`) are the top-level credit keys plus,
for PPO and the critic-free estimators, the ``ppo:`` section; :meth:`TrainConfig.settings` builds
them. Unknown keys are errors naming the key and the closest valid one. Overrides address nested
keys with dots and parse values as YAML: ``grpo.learning_rate=3e-4 credit=step lora.r=8``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolgym.envs.errors import check_choice, did_you_mean
from toolgym.envs.yaml_values import load_yaml
from toolgym.trainers._deps import silence_checkpointing_aliases
from toolgym.trainers.algorithms import AlgorithmSettings, PPOSettings, settings_for
from toolgym.trainers.names import ALGORITHMS
from toolgym.trainers.tasks import EnvSpec

DEFAULT_OUTPUT_DIR = "runs/train"
WARM_DIR = "warm"  # `toolgym demo` saves its warm-started model in <output_dir>/warm
WARM_START_SCHEDULERS = ("cosine", "linear", "constant")
# The settings every algorithm shares, held at the top level of a config (not under ppo:).
_SHARED = {f.name: f for f in dataclasses.fields(AlgorithmSettings)}


def native_bf16() -> bool:
    """Whether this machine multiplies bfloat16 natively (a GPU that supports it, or a CPU with
    AVX512-BF16 or AMX, where oneDNN's bf16 matmul is about twice float32's), so that bf16
    autocast speeds training up rather than emulating it."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _help(text: str, **kw) -> Any:
    return field(metadata={"help": text}, **kw)


def _shared(name: str) -> Any:
    """A top-level config field with the default and help of :class:`AlgorithmSettings`' field ``name``."""
    return field(default=_SHARED[name].default, metadata=_SHARED[name].metadata)


@dataclass
class LoraSettings:
    """The LoRA adapter (peft). ``enabled: false`` trains all weights."""

    enabled: bool = _help("train a LoRA adapter instead of all weights", default=True)
    r: int = _help("LoRA rank", default=16)
    alpha: int = _help("LoRA alpha (scale = alpha / r)", default=32)
    dropout: float = _help("LoRA dropout", default=0.0)
    target_modules: str | list[str] = _help("modules to adapt; 'all-linear' = every linear layer but the head",
                                            default="all-linear")

    def __post_init__(self):
        if self.r < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ValueError(f"lora needs r >= 1, alpha > 0, 0 <= dropout < 1; got r={self.r}, alpha={self.alpha}, "
                             f"dropout={self.dropout}")

    def peft_config(self):
        if not self.enabled:
            return None
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type="CAUSAL_LM")


@dataclass
class WarmStartConfig:
    """Settings of the supervised warm start (:mod:`toolgym.trainers.warm_start`): ``toolgym
    warm-start`` and ``warm_start:`` in a train config."""

    n_episodes: int = _help("oracle episodes generated (spread over the envs by weight); dataset envs go through "
                            "their records in order, so n = the record count trains each record once", default=120)
    epochs: float = _help("passes over the episodes (ignored when steps > 0)", default=1.0)
    steps: int = _help("optimiser steps; 0: as many as epochs take", default=0)
    lr: float = _help("peak learning rate", default=3e-4)
    scheduler: str = _help("learning-rate schedule: cosine, linear or constant (no warm-up)", default="cosine")
    batch: int = _help("episodes per optimiser step", default=1)
    lora: LoraSettings = _help("the LoRA adapter (enabled: false trains all weights)", default_factory=LoraSettings)
    max_completion_tokens: int = _help("completion tokens per episode at most (turns and env tokens); longer "
                                       "oracle episodes are dropped, not cut", default=4096)
    rollout_batch: int = _help("oracle episodes stepped together (one batched tool call per turn)", default=16)
    seed: int = _help("seed of the episodes, the data order and the adapter init", default=0)
    output_dir: str = _help("where the adapter, tokenizer and metrics go ('' in a train config: "
                            "<grpo.output_dir>/warm_start)", default="")
    merge: bool = _help("with LoRA, also save the adapter merged into the model in <output_dir>/merged (RL "
                        "starts from it)", default=True)
    logging_steps: int = _help("optimiser steps between loss records of the curve", default=1)
    bf16: bool | None = _help("bfloat16 autocast in training; null: on where the hardware multiplies bf16 natively "
                              "(a GPU that supports it, a CPU with AVX512-BF16 or AMX: 2.2x the float32 matmul "
                              "speed on this project's 2-core test machine)", default=None)

    def __post_init__(self):
        if isinstance(self.lora, dict):
            self.lora = _build(LoraSettings, self.lora, "warm_start.lora")
        for name in ("n_episodes", "batch", "max_completion_tokens", "rollout_batch", "logging_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"warm_start.{name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0 or (self.steps == 0 and not self.epochs > 0):
            raise ValueError(f"warm_start needs steps > 0 or epochs > 0, got steps={self.steps}, epochs={self.epochs}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"warm_start.lr must be a positive number, got {self.lr}")
        check_choice("warm_start.scheduler", self.scheduler, WARM_START_SCHEDULERS)


@dataclass
class TrainConfig:
    """Everything ``toolgym train`` needs. ``grpo`` holds trl.GRPOConfig fields, unchanged."""

    model: str = _help("the policy: a .gguf file or a directory holding one, a saved model or LoRA adapter "
                       "directory (training continues that adapter), or a hub id")
    envs: list[EnvSpec] = _help("the env mix", default_factory=list)
    algorithm: str = _help("grpo (ToolGRPOTrainer: TRL's GRPO), ppo (a critic with GAE over turns), or the "
                           "critic-free rloo, reinforce_pp, reinforce_pp_baseline on the same rollouts "
                           "(ToolPPOTrainer)", default="grpo")
    credit: str = _shared("credit")
    gamma: float = _shared("gamma")
    step_weight: float = _shared("step_weight")
    step_similarity: str = _shared("step_similarity")
    max_turn_tokens: int = _help("most tokens sampled per turn (grpo.max_completion_length bounds the episode)",
                                 default=256)
    num_tasks: int = _help("training tasks drawn (rows of the dataset TRL iterates)", default=100_000)
    log_episodes: int = _help("episodes of each generation step stored whole in OUTPUT_DIR/episodes.jsonl, best "
                              "and worst by return included (`toolgym view OUTPUT_DIR` shows them); 0: none",
                              default=4)
    lora: LoraSettings = _help("the LoRA adapter", default_factory=LoraSettings)
    warm_start: WarmStartConfig | None = _help(
        "a supervised warm start on the envs' oracle episodes before RL (null: none): WarmStartConfig fields "
        "(n_episodes, epochs, lr, lora, ...); written to <grpo.output_dir>/warm_start, reused when complete",
        default=None)
    model_kwargs: dict[str, Any] = _help("from_pretrained kwargs, e.g. {dtype: bfloat16}", default_factory=dict)
    chat_template: str | None = _help("a chat template for a model that has none (a base model's GGUF): TRL's "
                                      "template name (gemma, qwen2_5, ...) or a .jinja file", default=None)
    chat_template_kwargs: dict[str, Any] = _help("apply_chat_template kwargs", default_factory=dict)
    grpo: dict[str, Any] = _help("trl.GRPOConfig fields (output_dir, learning_rate, num_generations, ...), for "
                                 "every algorithm; those an algorithm does not read are refused",
                                 default_factory=dict)
    ppo: dict[str, Any] = _help("PPOSettings fields for algorithm ppo/rloo/reinforce_pp/... (lam, cliprange, "
                                "vf_coef, critic_warmup_steps, ...); credit, gamma, step_weight stay top-level",
                                default_factory=dict)
    bench: dict[str, Any] = _help("the benchmark of this run (e.g. on held-out records): `toolgym bench` fields "
                                  "(suite, n, env_kwargs, ...) read by `toolgym bench --config THIS_FILE`; training "
                                  "does not read it", default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise ValueError("model is required: a local path or a hub id, e.g. model: Qwen/Qwen2.5-3B-Instruct")
        if not self.envs:
            raise ValueError("envs is empty: give at least one, e.g. envs: [{id: MultiHopQA-v0}]")
        self.envs = [e if isinstance(e, EnvSpec) else _build(EnvSpec, e, "envs[]") for e in self.envs]
        if isinstance(self.lora, dict):
            self.lora = _build(LoraSettings, self.lora, "lora")
        if isinstance(self.warm_start, dict):
            self.warm_start = _build(WarmStartConfig, self.warm_start, "warm_start")
        if self.warm_start is not None and self.warm_start.lora.enabled and not self.warm_start.merge:
            raise ValueError("warm_start.merge is false, but RL starts from the merged warm model: set "
                             "warm_start.merge=true (or warm_start.lora.enabled=false)")
        if self.max_turn_tokens < 1 or self.num_tasks < 1:
            raise ValueError(f"max_turn_tokens and num_tasks must be >= 1, got {self.max_turn_tokens}, {self.num_tasks}")
        if not isinstance(self.log_episodes, int) or self.log_episodes < 0:
            raise ValueError(f"log_episodes must be an integer >= 0 (0 turns the episode records off), got "
                             f"{self.log_episodes!r}")
        if not isinstance(self.bench, dict):
            raise ValueError(f"bench must be a mapping of `toolgym bench` fields (suite, n, env_kwargs, ...), got "
                             f"{self.bench!r}")
        self.grpo = {k: _number(v) if isinstance(v, str) else v for k, v in self.grpo.items()}
        _check_keys(self.grpo, _grpo_types(), "grpo")
        check_types(self.grpo, _grpo_types(), "grpo.")
        check_choice("algorithm", self.algorithm, ALGORITHMS)
        for key in self.ppo:
            if key in _SHARED or key == "algorithm":
                raise ValueError(f"Unknown config key 'ppo.{key}': {key} is a top-level key, shared by every "
                                 f"algorithm; write {key}={self.ppo[key]!r} (or {key}: ... at the top of the file)")
        _check_keys(self.ppo, {f.name for f in PPOSettings.own_fields()} - {"algorithm"}, "ppo")
        check_types(self.ppo, typing.get_type_hints(PPOSettings), "ppo.")
        if self.ppo and self.algorithm == "grpo":
            raise ValueError(f"ppo: {', '.join(self.ppo)} {'is' if len(self.ppo) == 1 else 'are'} read by algorithms "
                             f"{', '.join(a for a in ALGORITHMS if a != 'grpo')}, not grpo: set algorithm (e.g. "
                             "algorithm=ppo) or remove the ppo: section")
        self.settings().check_trl_fields(self.grpo)  # validates the algorithm's settings now, not at step one

    def settings(self) -> AlgorithmSettings:
        """The algorithm's settings: :class:`~toolgym.trainers.algorithms.GRPOSettings` for grpo,
        :class:`~toolgym.trainers.algorithms.PPOSettings` (with the ``ppo:`` section) for the others."""
        shared = {name: getattr(self, name) for name in _SHARED}
        return settings_for(self.algorithm, **shared, **self.ppo)

    def check_startable(self, resume: bool | str | None = None) -> None:
        """What ``train`` needs beyond a valid config, checked before a model loads or a file is
        written: the model is an existing directory or could be a hub id, and ``resume`` has a
        checkpoint to continue from."""
        model = Path(self.model)
        if not model.exists() and not self.model.startswith("pypi:") and (self.model.startswith((".", "/", "~")) or self.model.count("/") > 1):
            # not a hub id (namespace/name) either: a local path that is missing
            hint = (f" Build the demo's warm model first: toolgym demo rl_steps=0 --output-dir {model.parent}"
                    if model.name == WARM_DIR else "")
            raise FileNotFoundError(f"model {self.model!r}: no such directory, and not a hub id (namespace/name)."
                                    f"{hint}")
        out = Path(self.grpo.get("output_dir", DEFAULT_OUTPUT_DIR))
        if resume is True and not any(out.glob("checkpoint-*")):
            raise FileNotFoundError(f"--resume: no checkpoint-* directory in {out} (grpo.output_dir); "
                                    "train once without --resume first, or pass --resume CHECKPOINT")
        if isinstance(resume, str) and not Path(resume).is_dir():
            raise FileNotFoundError(f"--resume {resume}: no such checkpoint directory; checkpoints are "
                                    f"{out}/checkpoint-N")

    # -- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _build(cls, data, "")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} not found (see configs/ for examples)")
        data = load_yaml(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
        return cls.from_dict(apply_overrides(data, overrides or []))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def grpo_config(self, **extra):
        """The trl.GRPOConfig of every algorithm's trainer, with CPU-safe defaults when no GPU is present."""
        import torch
        from trl import GRPOConfig

        silence_checkpointing_aliases()  # GRPOConfig's __post_init__ reads a deprecated alias
        kw = dict(self.grpo)
        if not torch.cuda.is_available():
            kw.setdefault("use_cpu", True)
            kw.setdefault("bf16", native_bf16())
        kw.setdefault("report_to", "none")
        kw.setdefault("output_dir", DEFAULT_OUTPUT_DIR)
        kw.update(extra)
        return GRPOConfig(**kw)


def _grpo_types() -> dict[str, Any]:
    """trl.GRPOConfig's init fields and their types."""
    from trl import GRPOConfig

    hints = typing.get_type_hints(GRPOConfig)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(GRPOConfig) if f.init}


def _check_keys(data: dict, valid, where: str) -> None:
    for key in data:
        if key not in valid:
            name = f"{where}.{key}" if where else key
            raise ValueError(f"Unknown config key {name!r}.{did_you_mean(key, valid)}"
                             f" Valid keys{' of ' + where if where else ''}: {', '.join(sorted(valid))[:600]}")


def _matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as YAML gives it) fits the annotation ``hint``; types this does not know pass."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, typing.Sequence) or hint in (list, tuple):
        return isinstance(value, (list, tuple)) and (not args or all(_matches(v, args[0]) for v in value))
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, (dict, hint))
    if isinstance(hint, type) and hint.__module__ == "builtins":
        return isinstance(value, hint)
    return True  # an enum or library class: its own constructor checks the value


def _type_name(hint: Any) -> str:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if hint is type(None):
        return "null"
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is dict:
        return "a mapping"
    if typing.get_origin(hint) is list:
        return f"a list ({_type_name(args[0])} each)" if args else "a list"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def check_types(data: dict, hints: dict[str, Any], where: str = "") -> None:
    """Raise a one-line ValueError for the first value of ``data`` whose type does not fit ``hints``
    (``gamma: abc`` would otherwise fail later as "'<' not supported between str and int")."""
    for key, value in data.items():
        hint = hints.get(key, Any)
        if not _matches(value, hint):
            raise ValueError(f"{where}{key} must be {_type_name(hint)}, got {type(value).__name__} {value!r}")


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'} must be a mapping, got {type(data).__name__}: {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    _check_keys(data, fields, where.rstrip("[]") if where else "")
    for name, f in fields.items():
        if name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"missing key {(where.rstrip('[]') + '.' if where else '') + name!r} "
                             f"({f.metadata.get('help', '')}); add it to the config or pass {name}=...")
    check_types(data, typing.get_type_hints(cls), f"{where}." if where else "")
    return cls(**data)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["grpo.learning_rate=3e-4", "credit=step"]`` applied to a nested dict (values parsed as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value (e.g. grpo.learning_rate=3e-4)")
        key, raw = item.split("=", 1)
        value = load_yaml(raw) if raw else ""
        if isinstance(value, str):
            value = _number(value)
        node: Any = data
        *path, last = key.strip().split(".")
        for p in path:  # walk dicts by key and lists by index, creating dicts on the way
            if isinstance(node, list):
                node = node[_index(p, node, key)]
            else:
                if not isinstance(node.get(p), (dict, list)):
                    node[p] = {}
                node = node[p]
        if isinstance(node, list):
            node[_index(last, node, key)] = value
        else:
            node[last] = value
    return data


def _index(part: str, node: list, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ValueError(f"override {key!r}: {part!r} is not an index of a list of {len(node)} items")
    return int(part)


def _number(text: str):
    """YAML 1.1 reads ``3e-4`` as a string; users mean a float."""
    try:
        return float(text) if any(c in text for c in ".eE") and not text.isalpha() else text
    except ValueError:
        return text


def describe_fields(cls, prefix: str, names=None, defaults: bool = False) -> list[str]:
    """``  <prefix><field>: <help>`` for the fields of dataclass ``cls`` (``names``: only those),
    with the field's default when ``defaults``."""
    lines = []
    for f in dataclasses.fields(cls):
        if names is None or f.name in names:
            default = "" if not defaults or f.default is dataclasses.MISSING else f" (default {f.default!r})"
            lines.append(f"  {prefix}{f.name}{default}: {f.metadata.get('help', '')}")
    return lines


def describe() -> str:
    """The config keys with their help, for ``toolgym train --help-config``."""
    lines = []
    for cls, prefix, names in ((TrainConfig, "", None), (EnvSpec, "envs[].", None), (LoraSettings, "lora.", None),
                               (WarmStartConfig, "warm_start.", None),
                               (PPOSettings, "ppo.", [f.name for f in PPOSettings.own_fields() if f.name != "algorithm"])):
        lines += describe_fields(cls, prefix, names)
    lines.append("  grpo.<field>: any trl.GRPOConfig field (see TRL's docs), passed through unchanged unless the "
                 "algorithm does not read it")
    return "\n".join(lines)
