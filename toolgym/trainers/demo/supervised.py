"""The demo's supervised warm start: the tiny tokenizer's training text, and next-token training on
the sampled tokens of scripted episodes (a random model never emits a tool call, so RL starts from
here) through the general warm start's trainer."""

from __future__ import annotations

import tempfile

from toolgym.trainers.config import WarmStartConfig
from toolgym.trainers.tiny_model import qwen_chat_template
from toolgym.trainers.warm_start import train_on_samples


def tok_template_text(messages) -> str:
    """The Qwen2.5 rendering of ``messages`` (for training the tokenizer on the chat scaffolding)."""
    import jinja2  # with the train extra (transformers)

    return jinja2.Template(qwen_chat_template()).render(messages=messages, add_generation_prompt=True)


def tokenizer_texts(envs) -> list[str]:
    """What the demo's tokenizer is trained on: each env's world (passages, questions, titles
    thrice) and its chat scaffolding (prompts, action and result syntax)."""
    texts = []
    for env in envs:
        u = env.unwrapped
        texts += [p.text for p in u.passages] + [ex.question for ex in u.examples] + [p.title for p in u.passages] * 3
        obs, _ = env.reset(seed=0)
        scaffold = [*obs, {"role": "assistant", "content": "<search>x</search>"},
                    {"role": "user", "content": '<information>Doc 1 (Title: "x") x</information>'}]
        texts += [tok_template_text(scaffold)] * 100
    return texts


def supervised_warm_start(model, samples, *, tokenizer, steps: int, batch: int, lr: float, seed: int,
                          progress: bool = True, callback=None, every: int = 0):
    """Next-token loss on the sampled (env_mask 1) tokens of scripted episodes, all weights (the tiny
    model has no pretrained weights to keep), AdamW with a cosine schedule: the demo's settings of
    :func:`toolgym.trainers.warm_start.train_on_samples`. ``callback(step)`` runs every ``every``
    steps, the model in eval mode."""
    from transformers import TrainerCallback

    class Every(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if callback is not None and every and state.global_step % every == 0:
                model.eval()
                callback(state.global_step)
                model.train()

    cfg = WarmStartConfig(steps=steps, batch=batch, lr=lr, seed=seed, scheduler="cosine", lora={"enabled": False},
                          logging_steps=max(steps // 40, 1), bf16=False)  # hidden 64: too small for bf16 to pay
    with tempfile.TemporaryDirectory() as scratch:  # the trainer saves nothing; its output_dir stays empty
        train_on_samples(model, tokenizer, samples, cfg, output_dir=scratch, progress=progress, callbacks=[Every()])
    return model
