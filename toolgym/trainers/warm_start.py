"""The supervised warm start: fine-tune a model on its env's own oracle trajectories before RL.

A model that never writes a valid tool call gives RL nothing to learn from (every episode earns
the same return, every advantage is 0). The warm start shows it what a good episode looks like:

1. **Trajectories** (:func:`oracle_samples`): each env's ``oracle_action()`` (written in the env's
   own action format) is rolled through the real :class:`~toolgym.trainers.rollout.RolloutEngine`
   by a :class:`ScriptedBackend` that "samples" the oracle's text as tokens. Prompt and completion
   ids and ``env_mask`` are therefore exactly those of an RL rollout of the same actions, in the
   model's chat template (:class:`toolgym.generation.ChatTemplate`), env tokens masked.
2. **Training** (:func:`train_on_samples`): next-token loss on the sampled (``env_mask`` 1) tokens
   only, with LoRA by default, through TRL's ``SFTTrainer``. It takes pre-tokenized rows
   (``input_ids`` plus an ``assistant_masks`` column, folded into the labels). Its own
   ``assistant_only_loss`` is not used: it needs ``{% generation %}`` marks in the chat template,
   which many templates (SmolLM2's) lack; the mask comes from the rollout's token bookkeeping
   instead, for any template. The loss itself (:func:`sampled_token_loss`) runs the LM head only on
   the labelled positions, with plain cross-entropy: TRL 1.16's tiled fused head does the same
   selection but cost 3x the whole step of the demo's model on CPU (measured, docs/training.md).
3. **Output** (:func:`warm_start`): the adapter (or the full model) and the tokenizer in
   ``output_dir``, the LoRA merged into a full model in ``output_dir/merged`` (what RL starts from),
   and ``metrics.json`` (the loss curve), written last: a directory with it is complete and is
   reused.

    toolgym warm-start --model M --env HotpotQA-v0 --kwargs data_files=dev.json corpus=example --out runs/ws
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from toolgym.envs.result import EpisodeResult
from toolgym.envs.scripted import OracleAgent
from toolgym.generation.backend import Generation
from toolgym.generation.chat import ChatTemplate
from toolgym.generation.models import load_model
from toolgym.trainers._deps import silence_checkpointing_aliases
from toolgym.trainers.config import WarmStartConfig, native_bf16
from toolgym.trainers.rollout import Episode, RolloutEngine
from toolgym.trainers.rollout import _calls as parse_calls  # the env's own reading of a turn's calls
from toolgym.trainers.tasks import EnvSpec

METRICS_FILE = "metrics.json"  # written last: its presence marks a complete warm start
MERGED_DIR = "merged"


# -- trajectories --------------------------------------------------------------------------------------
class _Watched(gym.Wrapper):
    """Keeps an episode's last observation and whether it ended, for :class:`ScriptedBackend`."""

    def reset(self, **kwargs):
        self.observation, info = self.env.reset(**kwargs)
        self.done = False
        return self.observation, info

    def step(self, action):
        self.observation, reward, terminated, truncated, info = self.env.step(action)
        self.done = bool(terminated or truncated)
        return self.observation, reward, terminated, truncated, info


class ScriptedBackend:
    """A generation backend that 'samples' what scripted agents write.

    At each turn, the agent of every episode still running writes its action
    (``agent.act(env.unwrapped, last observation)``, e.g. :class:`~toolgym.envs.scripted.OracleAgent`:
    ``env.oracle_action()``), which becomes its tokens (``add_special_tokens=False``) followed by
    the chat template's closing token: the ids a model that wrote that text would have sampled.

    The engine asks for one completion per running episode, in episode order; the backend knows
    which episodes run from its own envs (:meth:`watch` wraps them). It cannot know of episodes the
    engine ends for the token budget, so :func:`scripted_episodes` runs with no budget and drops
    long episodes afterwards.
    """

    def __init__(self, envs: Sequence[_Watched], tokenizer, agents: Sequence, template: ChatTemplate):
        if len(agents) != len(envs):
            raise ValueError(f"{len(agents)} agents for {len(envs)} envs; give one agent per env")
        self.envs, self.tokenizer, self.agents, self.template = list(envs), tokenizer, list(agents), template
        self._closing: dict[tuple[str, ...], int] = {}

    @staticmethod
    def watch(envs: Sequence) -> list[_Watched]:
        return [_Watched(env) for env in envs]

    def any_alive(self, alive: bool) -> bool:
        return alive

    def generate(self, prompts, max_new_tokens: int) -> list[Generation]:
        running = [i for i, env in enumerate(self.envs) if not env.done]
        if len(running) != len(prompts):
            raise RuntimeError(f"the engine asked for {len(prompts)} completions while {len(running)} scripted "
                               "episodes run; ScriptedBackend needs an engine with no token budget "
                               "(see scripted_episodes)")
        out = []
        for i in running:
            env = self.envs[i]
            text = self.agents[i].act(env.unwrapped, env.observation)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self._closing_id(env, text)]
            out.append(Generation(ids, [0.0] * len(ids)))
        return out

    def _closing_id(self, env, text: str) -> int:
        called = tuple(name for name, _ in parse_calls(env, text)[1])
        if called not in self._closing:
            self._closing[called] = self.tokenizer.convert_tokens_to_ids(self.template.closing_token(called))
        return self._closing[called]


def scripted_episodes(envs: Sequence, tokenizer, agents: Sequence, *, seeds: Sequence[int | None],
                      options: Sequence[dict | None] | None = None, chat_template_kwargs: dict | None = None
                      ) -> list[Episode]:
    """One lock-step batch: episode ``k`` of ``agents[k]`` in ``envs[k]`` (reset with ``seeds[k]``,
    ``options[k]``), rolled through the real engine. No token budget: an episode ends when its env
    ends it (the caller drops the long ones)."""
    watched = ScriptedBackend.watch(envs[:len(seeds)])
    engine = RolloutEngine(watched, tokenizer, None, max_completion_tokens=10**9, max_turn_tokens=10**9,
                           chat_template_kwargs=chat_template_kwargs)
    engine.backend = ScriptedBackend(watched, tokenizer, agents[:len(seeds)], engine.template)
    return engine.run(list(seeds), options=options)


def _allocate(weights: Sequence[float], n: int) -> list[int]:
    """``n`` episodes split over the envs in proportion to ``weights`` (largest remainders)."""
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"env weights must have a positive sum, got {list(weights)}")
    shares = [n * w / total for w in weights]
    counts = [int(s) for s in shares]
    for k in sorted(range(len(shares)), key=lambda k: counts[k] - shares[k])[: n - sum(counts)]:
        counts[k] += 1
    return counts


@dataclass
class OracleData:
    """The warm start's training data: the kept episodes and how many were dropped and why."""

    episodes: list[Episode]
    failed: int = 0  # the oracle did not succeed (e.g. its gold evidence is not in the corpus)
    too_long: int = 0  # more than max_completion_tokens completion tokens

    def rows(self) -> list[tuple[list[int], list[int], list[int]]]:
        """``(prompt_ids, completion_ids, env_mask)`` of every sample of every kept episode."""
        return [(s.prompt_ids, s.completion_ids, s.env_mask) for e in self.episodes for s in e.samples]


def oracle_samples(env_specs: Sequence[EnvSpec], tokenizer, cfg: WarmStartConfig, *,
                   chat_template_kwargs: dict | None = None, agent=None) -> OracleData:
    """``cfg.n_episodes`` oracle episodes over ``env_specs`` (split by weight), kept when the oracle
    succeeded within ``cfg.max_completion_tokens``. Episode ``j`` of an env is reset with seed
    ``cfg.seed + j`` and ``options={"index": j}`` (envs with records take the ``j``-th one)."""
    agent = agent or OracleAgent()
    data = OracleData([])
    for spec, count in zip(env_specs, _allocate([s.weight for s in env_specs], cfg.n_episodes), strict=True):
        if not count:
            continue
        envs = [spec.make(tokenizer, chat_template_kwargs) for _ in range(min(cfg.rollout_batch, count))]
        try:
            for start in range(0, count, len(envs)):
                idx = range(start, min(start + len(envs), count))
                for ep in scripted_episodes(envs, tokenizer, [agent] * len(idx), seeds=[cfg.seed + j for j in idx],
                                            options=[{"index": j} for j in idx],
                                            chat_template_kwargs=chat_template_kwargs):
                    result = EpisodeResult.from_info(ep.info) if ep.terminated or ep.truncated else None
                    if result is None or not result.success:
                        data.failed += 1
                    elif ep.tokens_used > cfg.max_completion_tokens:
                        data.too_long += 1
                    else:
                        data.episodes.append(ep)
        finally:
            for env in envs:
                env.close()
    if not data.episodes:
        raise ValueError(f"no usable oracle episode out of {cfg.n_episodes}: {data.failed} did not succeed and "
                         f"{data.too_long} had more than max_completion_tokens={cfg.max_completion_tokens} tokens; "
                         "check the env kwargs (corpus, data_files) or raise max_completion_tokens")
    return data


# -- training ------------------------------------------------------------------------------------------
def _sft_args(cfg: WarmStartConfig, output_dir: str, progress: bool):
    import torch
    from trl import SFTConfig

    silence_checkpointing_aliases()
    cpu = not torch.cuda.is_available()
    return SFTConfig(
        output_dir=output_dir, max_steps=cfg.steps or -1, num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch, learning_rate=cfg.lr, lr_scheduler_type=cfg.scheduler,
        warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, logging_steps=cfg.logging_steps,
        save_strategy="no", report_to="none", seed=cfg.seed, disable_tqdm=not progress,
        use_cpu=cpu, bf16=native_bf16() if cfg.bf16 is None else cfg.bf16,
        gradient_checkpointing=False,  # SFTConfig turns it on; these episodes fit without it, and it costs time
        max_length=None,  # episodes are bounded by max_completion_tokens; never cut one
        completion_only_loss=False, assistant_only_loss=False,  # the mask is the assistant_masks column
    )


def sampled_token_loss(model, input_ids, attention_mask, labels, num_items: int | None = None):
    """``model(..., labels=labels).loss`` (next-token loss summed over labelled tokens, divided by
    ``num_items``, default their count), with the LM head run only where a label is: most tokens
    of an episode are the env's. ``model`` may be a peft model."""
    import torch

    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = lm.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    logits = lm.get_output_embeddings()(hidden[:, :-1][keep])
    loss = torch.nn.functional.cross_entropy(logits.float(), target[keep], reduction="sum")
    return loss / max(int(num_items if num_items is not None else keep.sum()), 1)


def _plain_head(model) -> bool:
    """Whether the model's logits are its head's output as is (no softcapping or scale), which
    :func:`sampled_token_loss` assumes; TRL's fused head handles the others."""
    config = model.config.get_text_config()
    return getattr(config, "final_logit_softcapping", None) is None and \
        getattr(config, "logit_scale", None) in (None, 1.0) and getattr(config, "logits_scaling", None) in (None, 1.0)


def _sft_trainer_class():
    from trl import SFTTrainer

    class SampledTokenSFTTrainer(SFTTrainer):
        """``SFTTrainer`` with :func:`sampled_token_loss` as its loss on models with a plain head."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs or not _plain_head(model):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            return sampled_token_loss(model, inputs["input_ids"], inputs.get("attention_mask"), inputs["labels"],
                                      None if num_items_in_batch is None else int(num_items_in_batch))

    return SampledTokenSFTTrainer


def train_on_samples(model, tokenizer, rows: Sequence[tuple[list[int], list[int], list[int]]],
                     cfg: WarmStartConfig, *, output_dir: str, progress: bool = True, callbacks: Sequence = ()):
    """Next-token loss on the sampled tokens of ``rows`` (``(prompt_ids, completion_ids, env_mask)``),
    LoRA per ``cfg.lora``; returns the trained ``SFTTrainer`` (``trainer.model``: the peft model
    with LoRA, else ``model`` itself)."""
    from datasets import Dataset

    data = Dataset.from_dict({"input_ids": [list(p) + list(c) for p, c, _ in rows],
                              "assistant_masks": [[0] * len(p) + list(m) for p, _, m in rows]})
    # a model that is already a LoRA adapter (a saved warm start) trains on that adapter
    peft_config = None if hasattr(model, "peft_config") else cfg.lora.peft_config()
    trainer = _sft_trainer_class()(model, args=_sft_args(cfg, output_dir, progress), train_dataset=data,
                                   processing_class=tokenizer, peft_config=peft_config, callbacks=list(callbacks))
    trainer.train()
    trainer.model.eval()
    return trainer


def loss_curve(log_history: Sequence[dict]) -> list[dict[str, float]]:
    """``[{"step", "loss"}]`` from a trainer's log history."""
    return [{"step": int(r["step"]), "loss": float(r["loss"])} for r in log_history if "loss" in r]


# -- the whole stage -----------------------------------------------------------------------------------
def completed(output_dir: str | Path) -> dict | None:
    """The metrics of a complete warm start in ``output_dir``, else None."""
    path = Path(output_dir) / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def policy_dir(output_dir: str | Path, metrics: dict) -> Path:
    """Where the warm policy as a full model is: ``merged/`` with LoRA, else ``output_dir`` itself."""
    out = Path(output_dir)
    return out / MERGED_DIR if metrics.get("merged") else out


def warm_start(model: str, envs: Sequence[EnvSpec | str | dict], cfg: WarmStartConfig | None = None, *,
               chat_template: str | None = None, chat_template_kwargs: dict | None = None, progress: bool = True,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Warm-start ``model`` (anything :func:`toolgym.generation.models.load_model` takes: a .gguf, a
    model or adapter directory, a hub id; ``chat_template`` for a model without one) on oracle
    episodes of ``envs``; save the adapter (or full model), the tokenizer, ``merged/``
    (``cfg.merge``) and ``metrics.json`` in ``cfg.output_dir``; return the metrics. A complete
    ``cfg.output_dir`` is reused as it is."""
    cfg = cfg or WarmStartConfig()
    if not cfg.output_dir:
        raise ValueError("warm_start: output_dir is empty; give the directory to write (--out DIR)")
    specs = [e if isinstance(e, EnvSpec) else EnvSpec(e) if isinstance(e, str) else EnvSpec(**e) for e in envs]
    if not specs:
        raise ValueError("warm_start: no envs given; name at least one, e.g. --env MultiHopQA-v0")
    setting = {"model": str(model), "envs": [asdict(s) for s in specs], "config": asdict(cfg)}
    if (done := completed(cfg.output_dir)) is not None:
        differs = [k for k, v in setting.items() if json.loads(json.dumps(v, default=str)) != done.get(k)]
        if differs:
            raise ValueError(f"{cfg.output_dir} holds a complete warm start with another {', '.join(differs)}; "
                             "give another output directory, or delete it to train again")
        log(f"warm start: reusing the complete one in {cfg.output_dir} (delete it to train again)")
        return done
    t0 = time.time()
    policy, tokenizer = load_model(model, chat_template=chat_template)
    data = oracle_samples(specs, tokenizer, cfg, chat_template_kwargs=chat_template_kwargs)
    rows = data.rows()
    t_data = time.time() - t0
    out = Path(cfg.output_dir)
    trainer = train_on_samples(policy, tokenizer, rows, cfg, output_dir=str(out / "trainer"), progress=progress)
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    merged = hasattr(trainer.model, "merge_and_unload") and cfg.merge
    if merged:
        full = trainer.model.merge_and_unload()
        full.save_pretrained(str(out / MERGED_DIR))
        tokenizer.save_pretrained(str(out / MERGED_DIR))
    curve = loss_curve(trainer.state.log_history)
    per_pass = sum(sum(m) for _, _, m in rows)
    metrics = {
        **setting,
        "episodes": len(data.episodes), "dropped_failed": data.failed, "dropped_too_long": data.too_long,
        "samples": len(rows), "tokens_per_pass": per_pass,
        "tokens_trained": round(per_pass * float(trainer.state.epoch or 0)),
        "steps": trainer.state.global_step, "loss_first": curve[0]["loss"] if curve else None,
        "loss_last": curve[-1]["loss"] if curve else None, "loss_curve": curve,
        "data_seconds": round(t_data, 1), "seconds": round(time.time() - t0, 1),
        "adapter": hasattr(trainer.model, "peft_config"), "merged": merged,
    }
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=str))
    log(summary_line(metrics, out))
    return metrics


def summary_line(metrics: dict, out: Path) -> str:
    """The one line a warm start prints."""
    dropped = metrics["dropped_failed"] + metrics["dropped_too_long"]
    loss = (f"loss {metrics['loss_first']:.3f} -> {metrics['loss_last']:.3f}" if metrics["loss_first"] is not None
            else "no loss logged")
    what = "adapter" if metrics["adapter"] else "model"
    return (f"warm start: {metrics['episodes']} episodes ({dropped} dropped), {metrics['tokens_trained']} tokens "
            f"trained in {metrics['steps']} steps, {loss}, {metrics['seconds']:.0f} s; {what} and tokenizer: {out}"
            + (f", merged model: {out / MERGED_DIR}" if metrics["merged"] else ""))
