"""The supervised warm start: the tiny tokenizer's training text, and next-token training on the
sampled tokens of scripted episodes (a random model never emits a tool call, so RL starts from
here)."""

from __future__ import annotations

import math

from toolgym.trainers.tiny_model import qwen_chat_template


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


def sampled_token_loss(model, input_ids, attention_mask, labels):
    """``model(..., labels=labels).loss`` (mean next-token loss over labelled tokens), with the LM
    head run only where a label is: most tokens of an episode are the env's, and the head over the
    vocabulary is a large share of this tiny model's compute."""
    import torch

    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    logits = model.get_output_embeddings()(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), target[keep])


def supervised_warm_start(model, samples, *, steps: int, batch: int, lr: float, seed: int, pad_id: int,
                          progress: bool = True, callback=None, every: int = 0):
    """Next-token loss on the sampled (env_mask 1) tokens of scripted episodes; AdamW, cosine."""
    import torch
    from tqdm.auto import tqdm

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    model.train()
    bar = tqdm(range(steps), desc="warm start", disable=not progress)
    for step in bar:
        pick = torch.randint(len(samples), (batch,), generator=g).tolist()
        seqs = [samples[k][0] + samples[k][1] for k in pick]
        width = max(len(s) for s in seqs)
        ids = torch.full((batch, width), pad_id)
        att = torch.zeros((batch, width), dtype=torch.long)
        labels = torch.full((batch, width), -100)
        for r, k in enumerate(pick):
            p, c, m = samples[k]
            n = len(p) + len(c)
            ids[r, :n] = torch.tensor(p + c)
            att[r, :n] = 1
            labels[r, len(p):n] = torch.tensor([t if keep else -100 for t, keep in zip(c, m, strict=True)])
        loss = sampled_token_loss(model, ids, att, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if callback is not None and every and (step + 1) % every == 0:
            model.eval()
            callback(step + 1)
            model.train()
    model.eval()
    return model
