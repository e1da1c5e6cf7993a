"""Multi-turn GRPO on toolgym envs, on top of ``trl.GRPOTrainer`` (TRL pinned to 1.16.*).

TRL's ``rollout_func`` contract carries the episodes in: :class:`EnvRolloutFunc` runs the envs
with :class:`~toolgym.trainers.rollout.RolloutEngine` and returns ``prompt_ids``,
``completion_ids`` (sampled turns interleaved with env tokens), ``logprobs`` and ``env_mask``
(0 on env tokens: TRL excludes them from the loss), plus per-step rewards and token spans as extra
keys, which TRL hands to the reward functions.

Credit:
- ``outcome``: the reward function returns the episode return; TRL's group-normalised advantage.
- ``step``: per-step returns ``G_t`` (discounted sum of the step rewards from ``t`` on: process
  rewards plus the outcome) normalised over all steps of the group's episodes, each step's value
  given to that step's tokens. TRL's loss already accepts per-token advantages of shape (B, T)
  (``GRPOTrainer._compute_loss``), so the override is only :meth:`ToolGRPOTrainer._generate_and_score_completions`
  replacing the (B,) advantages by (B, T) ones. On single-step episodes both are identical.
- ``gigpo`` (GiGPO): the episode's group advantage plus ``step_weight`` times the step's
  advantage within its anchor-state group (the steps of the group's episodes sampled on the same
  observation, :attr:`~toolgym.trainers.rollout.Step.state`); see :func:`toolgym.trainers.advantages.gigpo`.

Contexts that are not append-only (``context="window"``): each step is trained on the context it
was sampled in, so an episode gives a sample per context (steps whose context merely grew share
one; see :mod:`toolgym.trainers.rollout`). TRL ties its rows to its prompts (rewards, groups, the
per-process slice), so :meth:`ToolGRPOTrainer._score_sample_rows` runs the episodes first, hands
TRL one row per sample (padded to a common count with rows that carry no loss), and then gives
each step's tokens the advantage from its episode's group: the episode's (``outcome``) or the
step's (``step``).

Example:
    >>> trainer = ToolGRPOTrainer("path/or/hub-id", envs=[EnvSpec("MultiHopQA-v0", {"format": "tags"})],
    ...                           args=GRPOConfig(output_dir="out", num_generations=8), credit="step")
    >>> trainer.train()
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from toolgym.generation.models import load_tokenizer
from toolgym.trainers._deps import require, silence_checkpointing_aliases
from toolgym.trainers.algorithms import GRPOSettings
from toolgym.trainers.episode_records import FILE as EPISODES_FILE
from toolgym.trainers.episode_records import TrainingEpisodeLog, training_records
from toolgym.trainers.rollout import Episode, HFBackend, RolloutEngine, VLLMBackend
from toolgym.trainers.tasks import EnvSpec, episode_metrics, task_dataset

require("trl", "train")
import torch  # noqa: E402
from accelerate.utils import gather_object  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.models import unwrap_model_for_generation  # noqa: E402

from toolgym.trainers import advantages as adv_lib  # noqa: E402  (needs torch: after require)

silence_checkpointing_aliases()  # TRL's calls of deprecated transformers aliases, made by the trainer below

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is the documented path we rely on


def episode_return(completions, episode_return, **_) -> list[float]:
    """TRL reward function: the episode's return (sum of its step rewards) computed by the env."""
    return list(episode_return)


class EnvRolloutFunc:
    """TRL ``rollout_func``: runs one episode per prompt and returns the token-level batch.

    Envs are made once and reused (a pool per env spec). Generation goes through TRL's vLLM
    integration when the trainer has ``use_vllm``, otherwise through HF ``generate`` on the
    unwrapped training model.
    """

    def __init__(self, envs: Sequence[EnvSpec], *, max_turn_tokens: int = 256, chat_template_kwargs: dict | None = None):
        self.specs = list(envs)
        self.max_turn_tokens = max_turn_tokens
        self.chat_template_kwargs = chat_template_kwargs
        self.tokenizer = None  # the policy's, for envs with format 'native'
        self._pools: list[list] = [[] for _ in self.specs]
        self.last_episodes = []

    def _envs_for(self, tasks: Sequence[dict]) -> list:
        used = [0] * len(self.specs)
        out = []
        for t in tasks:
            k = t["env"]
            if used[k] == len(self._pools[k]):
                self._pools[k].append(self.specs[k].make(self.tokenizer, self.chat_template_kwargs))
            out.append(self._pools[k][used[k]])
            used[k] += 1
        return out

    def append_only(self) -> bool:
        """True when every env of the mix keeps an append-only context (then an episode is one row)."""
        for pool, spec in zip(self._pools, self.specs, strict=True):
            if not pool:
                pool.append(spec.make(self.tokenizer, self.chat_template_kwargs))
        return all(getattr(pool[0].unwrapped, "context_append_only", True) for pool in self._pools)

    def __call__(self, prompts: list[str], trainer) -> dict[str, list]:
        eps = self.episodes(prompts, trainer)
        if not all(e.append_only for e in eps):
            raise RuntimeError("an episode with a non-append-only context has a sample per context, not one row; "
                               "ToolGRPOTrainer trains those through _score_sample_rows, not this rollout_func")
        return {
            "prompt_ids": [e.prompt_ids for e in eps],
            "completion_ids": [e.completion_ids for e in eps],
            "logprobs": [e.logprobs for e in eps],
            "env_mask": [e.env_mask for e in eps],
            "episode_return": [e.ret for e in eps],
            "step_rewards": [e.step_rewards for e in eps],
            "step_spans": [e.step_spans for e in eps],
            "step_states": [e.step_states for e in eps],
        }

    def episodes(self, prompts: list[str], trainer) -> list[Episode]:
        """Run one episode per prompt with the trainer's policy and log their metrics."""
        tasks = [json.loads(p) for p in prompts]
        envs = self._envs_for(tasks)
        args = trainer.args
        budget = args.max_completion_length
        tok = trainer.processing_class
        if trainer.use_vllm:
            eps = self._run(envs, tasks, tok, VLLMBackend(trainer), budget)
        else:
            with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator) as model:
                backend = HFBackend(model, tok, temperature=args.temperature, top_k=args.top_k or 0, top_p=args.top_p)
                eps = self._run(envs, tasks, tok, backend, budget)
        self.last_episodes = eps
        for name, value in episode_metrics(eps).items():
            trainer._log_metric(name, value)  # averaged over processes by TRL
        return eps

    def _run(self, envs, tasks, tok, backend, budget):
        engine = RolloutEngine(envs, tok, backend, max_completion_tokens=budget,
                               max_turn_tokens=min(self.max_turn_tokens, budget),
                               chat_template_kwargs=self.chat_template_kwargs)
        return engine.run([t["seed"] for t in tasks])


def sample_rows(episodes: Sequence[Episode], prompts: Sequence[str], n_rows: int, filler: int):
    """TRL rows for episodes trained sample by sample: each sample of each episode in order (the
    steps of a windowed episode sampled on one context, or a whole append-only episode), then
    padding rows up to ``n_rows`` (one ``filler`` token with env_mask 0: no loss).

    Returns ``(batch, rows)``: the rollout_func dict plus ``prompt`` (each row's label for TRL's logs:
    the task, with ``steps`` for a windowed episode's sample), and the ``(episode index, sample
    index)`` of each real row.
    ``episode_return`` is set on the last row of each episode and None elsewhere, so TRL's reward
    logs count each episode once; ``step_rewards`` (the episode's) and ``step_spans`` (this row's
    steps) are there for reward functions, as in episode rows.
    """
    rows = [(i, j) for i, ep in enumerate(episodes) for j in range(len(ep.samples))]
    if n_rows < len(rows):
        raise ValueError(f"n_rows={n_rows} is fewer than the {len(rows)} samples of these episodes")
    batch: dict[str, list] = {k: [] for k in ("prompt", "prompt_ids", "completion_ids", "logprobs", "env_mask",
                                              "episode_return", "step_rewards", "step_spans", "step_states")}
    for r, (i, j) in enumerate(rows):
        sample, last = episodes[i].samples[j], r + 1 == len(rows) or rows[r + 1][0] != i
        steps = {} if episodes[i].append_only else {"steps": [k for k, _ in episodes[i].sample_steps(j)]}
        batch["prompt"].append(json.dumps({**json.loads(prompts[i]), **steps}))
        batch["prompt_ids"].append(sample.prompt_ids)
        batch["completion_ids"].append(sample.completion_ids)
        batch["logprobs"].append(sample.logprobs)
        batch["env_mask"].append(sample.env_mask)
        batch["episode_return"].append(episodes[i].ret if last else None)
        batch["step_rewards"].append(episodes[i].step_rewards)
        batch["step_spans"].append([span for _, span in episodes[i].sample_steps(j)])
        batch["step_states"].append(episodes[i].step_states)
    for _ in range(n_rows - len(rows)):
        for key, value in (("prompt", "padding"), ("prompt_ids", [filler]), ("completion_ids", [filler]),
                           ("logprobs", [0.0]), ("env_mask", [0]), ("episode_return", None), ("step_rewards", []),
                           ("step_spans", []), ("step_states", [])):
            batch[key].append(value)
    return batch, rows


@contextlib.contextmanager
def _rows_without_reward_are_expected():
    """Mute TRL's warning about rows no reward function scored: with one row per sample, only each
    episode's last row and no padding row carries the return (so TRL's reward logs are per episode)."""
    trl_logger = logging.getLogger(GRPOTrainer.__module__)
    muted = _DropMessage("All reward functions returned None")  # accelerate prefixes "[RANK k] "
    trl_logger.addFilter(muted)
    try:
        yield
    finally:
        trl_logger.removeFilter(muted)


class _DropMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def step_advantages(step_rewards: Sequence[Sequence[float]], num_generations: int, gamma: float = 1.0,
                    scale: str = "group") -> list[list[float]]:
    """Per-step advantages for ``credit: step``: returns-to-go normalised over all steps of each
    group's episodes, TRL's way (``(G - mean) / (std + 1e-4)``, ``scale`` group|batch|none), so that
    one-step episodes get exactly TRL's numbers. The GRPO estimator of :mod:`toolgym.trainers.advantages`."""
    return adv_lib.step_advantages(step_rewards, num_generations, "grpo", "step", gamma, scale)


class ToolGRPOTrainer(GRPOTrainer):
    """``trl.GRPOTrainer`` on toolgym envs: multi-turn rollouts, env-token masking, step-level credit.

    Args:
        model: a model or a path / hub id (as for ``GRPOTrainer``).
        envs: the env mix (:class:`EnvSpec` list).
        args: a ``trl.GRPOConfig`` (passed through unchanged).
        credit: ``"outcome"`` (TRL's GRPO on the episode return), ``"step"`` (per-step returns) or
            ``"gigpo"`` (episode plus anchor-state step groups).
        gamma: discount of the per-step returns (``credit="step"`` and ``"gigpo"``).
        step_weight: GiGPO's omega, the weight of the step-level advantage (``credit="gigpo"``).
        max_turn_tokens: most tokens sampled in one turn (``args.max_completion_length`` bounds the
            whole episode).
        train_dataset: tasks (see :func:`task_dataset`); default: ``num_tasks`` tasks drawn with ``args.seed``.
        log_episodes: episodes of each generation step stored whole in ``OUTPUT_DIR/episodes.jsonl``
            (best and worst by return included; :mod:`toolgym.trainers.episode_records`); 0: none.
        **kwargs: anything else ``GRPOTrainer`` takes (``peft_config``, ``callbacks``, ``processing_class``...).
    """

    def __init__(self, model, envs: Sequence[EnvSpec], args: GRPOConfig, *, credit: str = "outcome",
                 gamma: float = 1.0, step_weight: float = 1.0, max_turn_tokens: int = 256, train_dataset=None,
                 num_tasks: int = 100_000, chat_template_kwargs: dict | None = None, log_episodes: int = 4,
                 **kwargs):
        settings = GRPOSettings(credit=credit, gamma=gamma, step_weight=step_weight)  # validates them
        if not envs:
            raise ValueError("envs is empty: give at least one EnvSpec")
        silence_checkpointing_aliases()  # again here: a caller's warnings.catch_warnings() may have reset it
        self.credit, self.gamma, self.step_weight = settings.credit, settings.gamma, settings.step_weight
        self.env_specs = list(envs)
        self.env_rollout = EnvRolloutFunc(envs, max_turn_tokens=max_turn_tokens,
                                          chat_template_kwargs=chat_template_kwargs)
        self.env_rollout.tokenizer = kwargs.get("processing_class")
        if self.env_rollout.tokenizer is None and any(s.kwargs.get("format") == "native" for s in envs):
            self.env_rollout.tokenizer = load_tokenizer(model if isinstance(model, str) else model.name_or_path)
        if train_dataset is None:
            train_dataset = task_dataset(envs, num_tasks, seed=args.seed)
        # one row per episode, or (a windowed context in the mix) one row per sample: see _score_sample_rows
        self.rows_per_sample = not self.env_rollout.append_only()
        kwargs.setdefault("reward_funcs", [episode_return])
        super().__init__(model, args=args, train_dataset=train_dataset, rollout_func=self.env_rollout, **kwargs)
        if self.rows_per_sample and self.loss_type in ("grpo", "sapo", "luspo", "dr_grpo"):
            warnings.warn(f"loss_type={self.loss_type!r} averages over rows, and with context='window' the rows are "
                          "samples plus padding rows that carry no loss, so the padding scales the loss down; the "
                          "token-level loss_type='dapo' (TRL's default) is not affected", stacklevel=2)
        self.episode_log = None  # the main process writes its own episodes' records
        if log_episodes and self.accelerator.is_main_process:
            self.episode_log = TrainingEpisodeLog(Path(args.output_dir) / EPISODES_FILE, log_episodes)
        elif log_episodes < 0:
            raise ValueError(f"log_episodes must be >= 0 (0 turns the episode records off), got {log_episodes}")
        self._sample_rows: dict[tuple[int, int], int] = {}

    @property
    def _group_size(self) -> int:
        return self.num_generations if self.model.training else self.num_generations_eval

    def _generate_and_score_completions(self, inputs):
        output = self._score(inputs)
        if self.episode_log is not None:
            self._log_episodes(inputs, output)
        return output

    def _score(self, inputs):
        """TRL's batch for ``inputs`` with this trainer's advantages (PPO overrides this)."""
        if self.rows_per_sample:
            return self._score_sample_rows(inputs)
        output = super()._generate_and_score_completions(inputs)
        if self.credit in ("step", "gigpo"):
            output["advantages"] = self._per_token_advantages(inputs, output["completion_ids"].shape)
        return output

    def _log_episodes(self, inputs, output):
        """Append the records of a bounded sample of this batch's episodes, with each step's advantage."""
        episodes = self.env_rollout.last_episodes
        rows = self._sample_rows if self.rows_per_sample else {(i, 0): i for i in range(len(episodes))}
        tok = self.processing_class
        records = training_records(
            episodes, [json.loads(x["prompt"]) for x in inputs], [spec.id for spec in self.env_specs],
            output["advantages"].tolist(), rows, keep=self.episode_log.keep, step=self.state.global_step,
            mode="train" if self.model.training else "eval", run=Path(self.args.output_dir).name,
            group_size=self._group_size,
            token_text=lambda ids: tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        self.episode_log.write(records)

    def _estimator(self) -> tuple[str, str, float]:
        """(advantage estimator, credit, gamma) of :func:`toolgym.trainers.advantages.step_advantages`."""
        return "grpo", self.credit, self.gamma

    def _local_step_advantages(self, step_rewards: Sequence[Sequence[float]],
                               step_states: Sequence[Sequence[str]] | None = None) -> list[list[float]]:
        """Per-step advantages of this process's episodes; groups may straddle processes, so gather first."""
        all_rewards = gather_object([list(r) for r in step_rewards])
        estimator, credit, gamma = self._estimator()
        all_states = None
        if credit == "gigpo":
            all_states = gather_object([list(s) for s in step_states])
            self._log_anchor_stats(all_rewards, all_states, gamma)
        all_adv = adv_lib.step_advantages(all_rewards, self._group_size, estimator, credit, gamma, self.scale_rewards,
                                          step_states=all_states, step_weight=self.step_weight)
        start = self.accelerator.process_index * len(step_rewards)
        return all_adv[start:start + len(step_rewards)]

    def _log_anchor_stats(self, step_rewards, step_states, gamma: float):
        """``gigpo/anchor_step_share``, ``gigpo/anchor_group_size``, ``gigpo/anchor_return_std``: whether
        states repeat within groups, and whether the returns of a repeated state differ."""
        rewards, mask = adv_lib.pad_steps(step_rewards)
        states = adv_lib.pad_steps(adv_lib.state_ids(step_states), dtype=torch.long)[0]
        stats = adv_lib.anchor_stats(states, adv_lib.discounted_returns(rewards, mask, gamma), mask, self._group_size)
        mode = "train" if self.model.training else "eval"
        for name, value in stats.items():
            self._metrics[mode][f"gigpo/{name}"].append(value)

    def _per_token_advantages(self, inputs, shape) -> torch.Tensor:
        """(B, T) advantages for this process's episode rows: each step's advantage on its tokens."""
        local = self._local_step_advantages([x["step_rewards"] for x in inputs],
                                            [x.get("step_states", []) for x in inputs])  # read by gigpo only
        return self._spread_over_tokens([x["step_spans"] for x in inputs], local, shape)

    def _spread_over_tokens(self, spans, values, shape) -> torch.Tensor:
        """(B, T): ``values[b][k]`` on the tokens ``spans[b][k]`` of row ``b``, 0 elsewhere (env tokens, padding)."""
        step_values, step_mask = adv_lib.pad_steps(values)
        tokens = adv_lib.steps_to_tokens(step_values, adv_lib.pad_spans(spans, step_values.shape[1]), step_mask,
                                         shape[1])
        return tokens.to(self.accelerator.device)

    # -- non-append-only contexts: one row per sample -----------------------------------------------------
    def _score_sample_rows(self, inputs):
        """TRL's scoring on one row per sample: the episodes run first (TRL's rollout_func must return
        one row per prompt, and the rows are known only after the rollout), TRL then scores the rows
        through a rollout_func that hands them over, and each step's tokens get the step's advantage
        from its episode's group (the group statistics are over episodes, not rows)."""
        self._sync_vllm_weights()
        prompts = [x["prompt"] for x in inputs]
        episodes = self.env_rollout.episodes(prompts, self)
        n_rows = self._common_row_count(sum(len(ep.samples) for ep in episodes))
        batch, rows = sample_rows(episodes, prompts, n_rows, filler=self.processing_class.eos_token_id)
        self._sample_rows = {row: r for r, row in enumerate(rows)}  # for the episode records
        labels = batch.pop("prompt")
        self.rollout_func = lambda _prompts, _trainer: batch
        try:
            with _rows_without_reward_are_expected():
                output = super()._generate_and_score_completions([{"prompt": p} for p in labels])
        finally:
            self.rollout_func = self.env_rollout
        adv = self._local_step_advantages([ep.step_rewards for ep in episodes], [ep.step_states for ep in episodes])
        values = [[adv[i][k] for k, _ in episodes[i].sample_steps(j)] for i, j in rows]
        values += [[]] * (n_rows - len(rows))  # padding rows
        output["advantages"] = self._spread_over_tokens(batch["step_spans"], values, output["completion_ids"].shape)
        self._relog_over_episodes(episodes, output)
        return output

    def _sync_vllm_weights(self):
        """TRL syncs vLLM's weights when it calls rollout_func; the sample rows' episodes run before that."""
        if self.use_vllm and self.state.global_step != self._last_loaded_step:
            self.vllm_generation.sync_weights()
            self._last_loaded_step = self.state.global_step

    def _common_row_count(self, n: int) -> int:
        """The rows each process hands TRL: the most samples of any process (TRL gathers rows across
        processes), rounded up so TRL's groups of num_generations and its steps_per_generation split
        take every row."""
        most = int(self.accelerator.gather(torch.tensor([n], device=self.accelerator.device)).max().item())
        multiple = math.lcm(self._group_size, self.args.steps_per_generation if self.model.training else 1)
        return -(-most // multiple) * multiple

    def _relog_over_episodes(self, episodes, output):
        """TRL logged frac_reward_zero_std over groups of rows and its own advantages; put back the
        episodes' groups and each row's advantage (its mean over the row's trained tokens)."""
        mode = "train" if self.model.training else "eval"
        returns = torch.tensor(gather_object([ep.ret for ep in episodes])).view(-1, self._group_size)
        if self._group_size > 1:
            zero_std = torch.isclose(returns.std(1), torch.zeros(len(returns))).float().mean().item()
            self._metrics[mode]["frac_reward_zero_std"][-1] = zero_std
        mask = (output["completion_mask"] * output["tool_mask"]).float()
        row_adv = gather_object(((output["advantages"] * mask).sum(1) / mask.sum(1).clamp(min=1)).tolist())
        logged = self._logs["advantages"]
        for _ in range(min(len(row_adv), len(logged))):
            logged.pop()
        logged.extend(row_adv)
