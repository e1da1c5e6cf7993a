"""The training config: one YAML file (plus ``key=value`` overrides) for ``toolgym train``.

    model: Qwen/Qwen2.5-3B-Instruct        # a path or a hub id
    envs:
      - id: MultiHopQA-v0
        kwargs: {dataset: hotpotqa, format: hermes}
        weight: 1.0
    credit: outcome                       # or step
    lora: {r: 16, alpha: 32}
    grpo:                                 # trl.GRPOConfig fields, passed through unchanged
      learning_rate: 1.0e-6
      num_generations: 8

Unknown keys are errors naming the key and the closest valid one. Overrides address nested keys
with dots and parse values as YAML: ``grpo.learning_rate=3e-4 credit=step lora.r=8``.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolgym.envs.errors import suggest
from toolgym.trainers.ppo_settings import ALGORITHMS, PPOSettings

CREDITS = ("outcome", "step", "gigpo")
SIMILARITIES = ("exact",)  # GiGPO step groups: steps whose observations are identical
# PPOSettings fields that the config holds at the top level (shared with GRPO).
_TOP_LEVEL_PPO = {"algorithm", "credit", "gamma", "step_weight"}


def _help(text: str, **kw) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass
class EnvEntry:
    """One env of the mix."""

    id: str = _help("a registered env id, e.g. MultiHopQA-v0")
    kwargs: dict[str, Any] = _help("keyword arguments of gym.make", default_factory=dict)
    weight: float = _help("share of the training episodes (normalised over the mix)", default=1.0)
    system_prompt: str | None = _help("replace the env's system message (None: keep it)", default=None)

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"envs[].id must be a non-empty env id string, got {self.id!r}")
        if not isinstance(self.kwargs, dict):
            raise ValueError(f"envs[].kwargs must be a mapping, got {type(self.kwargs).__name__}: {self.kwargs!r}")
        if not isinstance(self.weight, (int, float)) or self.weight < 0:
            raise ValueError(f"envs[].weight must be a number >= 0, got {self.weight!r}")


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
class TrainConfig:
    """Everything ``toolgym train`` needs. ``grpo`` holds trl.GRPOConfig fields, unchanged."""

    model: str = _help("the policy: a local path or a hub id")
    envs: list[EnvEntry] = _help("the env mix", default_factory=list)
    algorithm: str = _help("grpo (TRL's GRPO), ppo (a critic with GAE over turns), or the critic-free rloo, "
                           "reinforce_pp, reinforce_pp_baseline on the same rollouts", default="grpo")
    credit: str = _help("outcome: GRPO on the episode return; step: per-step returns for each step's tokens; "
                        "gigpo: the episode's group advantage plus step_weight times each step's advantage within "
                        "its anchor-state group (GiGPO)", default="outcome")
    gamma: float = _help("discount of the per-step returns (credit: step, gigpo)", default=1.0)
    step_weight: float = _help("credit gigpo: omega, the weight of the step-level advantage (GiGPO's default 1.0)",
                               default=1.0)
    step_similarity: str = _help("credit gigpo: which steps form a step group; exact = sampled on the identical "
                                 "observation (GiGPO's default)", default="exact")
    max_turn_tokens: int = _help("most tokens sampled per turn (grpo.max_completion_length bounds the episode)",
                                 default=256)
    num_tasks: int = _help("training tasks drawn (rows of the dataset TRL iterates)", default=100_000)
    lora: LoraSettings = _help("the LoRA adapter", default_factory=LoraSettings)
    model_kwargs: dict[str, Any] = _help("from_pretrained kwargs, e.g. {dtype: bfloat16}", default_factory=dict)
    chat_template_kwargs: dict[str, Any] = _help("apply_chat_template kwargs", default_factory=dict)
    grpo: dict[str, Any] = _help("trl.GRPOConfig fields (output_dir, learning_rate, num_generations, ...)",
                                 default_factory=dict)
    ppo: dict[str, Any] = _help("PPOSettings fields for algorithm ppo/rloo/reinforce_pp/... (lam, cliprange, "
                                "vf_coef, critic_warmup_steps, ...); algorithm, credit and gamma stay top-level",
                                default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model:
            raise ValueError("model is required: a local path or a hub id, e.g. model: Qwen/Qwen2.5-3B-Instruct")
        if not self.envs:
            raise ValueError("envs is empty: give at least one, e.g. envs: [{id: MultiHopQA-v0}]")
        self.envs = [e if isinstance(e, EnvEntry) else _build(EnvEntry, e, "envs[]") for e in self.envs]
        if isinstance(self.lora, dict):
            self.lora = _build(LoraSettings, self.lora, "lora")
        if self.credit not in CREDITS:
            hint = suggest(str(self.credit), CREDITS)
            raise ValueError(f"credit must be one of {CREDITS}, got {self.credit!r}." +
                             (f" Did you mean {hint!r}?" if hint else ""))
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if not isinstance(self.step_weight, (int, float)) or self.step_weight < 0:
            raise ValueError(f"step_weight must be a number >= 0, got {self.step_weight!r}; GiGPO's default is 1.0")
        if self.step_similarity not in SIMILARITIES:
            hint = suggest(str(self.step_similarity), SIMILARITIES)
            raise ValueError(f"step_similarity must be one of {SIMILARITIES}, got {self.step_similarity!r}." +
                             (f" Did you mean {hint!r}?" if hint else ""))
        if self.max_turn_tokens < 1 or self.num_tasks < 1:
            raise ValueError(f"max_turn_tokens and num_tasks must be >= 1, got {self.max_turn_tokens}, {self.num_tasks}")
        _check_keys(self.grpo, _grpo_fields(), "grpo")
        self.grpo = {k: _number(v) if isinstance(v, str) else v for k, v in self.grpo.items()}
        if self.algorithm not in ALGORITHMS:
            hint = suggest(str(self.algorithm), ALGORITHMS)
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}." +
                             (f" Did you mean {hint!r}?" if hint else ""))
        _check_keys(self.ppo, {f.name for f in dataclasses.fields(PPOSettings)} - _TOP_LEVEL_PPO, "ppo")
        self.ppo_settings()  # validates the ppo section now, not at the first training step

    def ppo_settings(self) -> PPOSettings:
        """The PPO / estimator settings: ``ppo:`` plus the top-level algorithm, credit and gamma."""
        return PPOSettings(algorithm=self.algorithm, credit=self.credit, gamma=self.gamma,
                           step_weight=self.step_weight, **self.ppo)

    # -- construction -----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return _build(cls, data, "")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {str(path)!r} not found (see configs/ for examples)")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
        return cls.from_dict(apply_overrides(data, overrides or []))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def grpo_config(self, **extra):
        """The trl.GRPOConfig, with CPU-safe defaults when no GPU is present."""
        import torch
        from trl import GRPOConfig

        kw = dict(self.grpo)
        if not torch.cuda.is_available():
            kw.setdefault("use_cpu", True)
            kw.setdefault("bf16", False)
        kw.setdefault("report_to", "none")
        kw.setdefault("output_dir", "runs/train")
        kw.update(extra)
        return GRPOConfig(**kw)


def _grpo_fields() -> set[str]:
    from trl import GRPOConfig

    return {f.name for f in dataclasses.fields(GRPOConfig) if f.init}


def _check_keys(data: dict, valid, where: str) -> None:
    for key in data:
        if key not in valid:
            hint = suggest(str(key), valid)
            name = f"{where}.{key}" if where else key
            raise ValueError(f"Unknown config key {name!r}." + (f" Did you mean {hint!r}?" if hint else "") +
                             f" Valid keys{' of ' + where if where else ''}: {', '.join(sorted(valid))[:600]}")


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'} must be a mapping, got {type(data).__name__}: {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    _check_keys(data, names, where.rstrip("[]") if where else "")
    return cls(**data)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["grpo.learning_rate=3e-4", "credit=step"]`` applied to a nested dict (values parsed as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value (e.g. grpo.learning_rate=3e-4)")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
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


def describe() -> str:
    """The config keys with their help, for ``toolgym train --help-config``."""
    lines = []
    for cls, prefix in ((TrainConfig, ""), (EnvEntry, "envs[]."), (LoraSettings, "lora."), (PPOSettings, "ppo.")):
        for f in dataclasses.fields(cls):
            if prefix == "ppo." and f.name in _TOP_LEVEL_PPO:
                continue
            lines.append(f"  {prefix}{f.name}: {f.metadata.get('help', '')}")
    lines.append("  grpo.<field>: any trl.GRPOConfig field (see TRL's docs), passed through unchanged")
    return "\n".join(lines)
