"""``toolgym demo``: RL that visibly works on a CPU in minutes.

On the synthetic MultiHopQA world ("Where was the director of FILM born?", 2 hops, tags format),
it builds a tiny Qwen2 model offline, warms it up with a supervised pass on scripted trajectories
(a mix of expert and naive ones, so there is room to improve), measures it on held-out questions
(test split: unseen films and directors), runs GRPO with LoRA through :class:`ToolGRPOTrainer`,
measures again, and compares with a naive-RAG baseline (search the question once, answer with what
comes back). Writes ``results.json``, ``demo.png`` and checkpoints under ``output_dir``.

The modules: ``config`` (DemoConfig and the demo's envs), ``warm_pool`` (the scripted episodes),
``supervised`` (tokenizer text, the supervised warm start), ``evaluation`` (held-out EM, copy
accuracy, naive RAG), ``pipeline`` (warm start, RL, ``run_demo``), ``comparisons`` (algorithms,
credit arms), ``reports`` and ``plots``. Importing it needs no torch: the train extra is imported
when used.
"""

from toolgym.trainers.demo.comparisons import compare_algorithms, compare_credit
from toolgym.trainers.demo.config import (
    CREDIT_ARMS,
    FRESH_WORLD_SEED,
    RENAMED_SETTINGS,
    RL_WORLD_SEED,
    SHORT_PROMPT,
    TEMPLATE,
    DemoConfig,
    env_kwargs,
    env_spec,
    make_env,
    renamed_setting_error,
    rl_env_specs,
)
from toolgym.trainers.demo.evaluation import (
    copy_accuracy,
    evaluate,
    held_out_episodes,
    naive_rag,
    sampled_spans,
)
from toolgym.trainers.demo.pipeline import WarmStart, held_out_eval, reinforce, run_demo, warm_start
from toolgym.trainers.demo.plots import plot, plot_credit, plot_curves
from toolgym.trainers.demo.reports import credit_markdown, credit_table, em_interval, summary
from toolgym.trainers.demo.supervised import (
    supervised_warm_start,
    tok_template_text,
    tokenizer_texts,
)
from toolgym.trainers.demo.warm_pool import PlanAgent, can_fork, scripted_plan, warm_trajectories

__all__ = [
    "CREDIT_ARMS", "FRESH_WORLD_SEED", "RENAMED_SETTINGS", "RL_WORLD_SEED", "SHORT_PROMPT", "TEMPLATE", "DemoConfig",
    "PlanAgent", "WarmStart", "can_fork", "compare_algorithms", "compare_credit", "copy_accuracy",
    "credit_markdown", "credit_table", "em_interval", "env_kwargs", "env_spec", "evaluate", "held_out_episodes",
    "held_out_eval", "make_env", "naive_rag", "plot", "plot_credit", "plot_curves", "reinforce",
    "renamed_setting_error", "rl_env_specs", "run_demo", "sampled_spans", "scripted_plan",
    "summary", "supervised_warm_start", "tok_template_text", "tokenizer_texts", "warm_start", "warm_trajectories",
]
