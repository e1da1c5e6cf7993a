"""Helpers of the generation tests: the tiny tokenizer carrying any chat template TRL ships, and
a scripted backend that writes an env's expert actions in the family's own syntax."""

from __future__ import annotations

from toolgym.generation import Generation, GenerationBackend

VISION = ("vl", "llava", "idefics", "smolvlm", "diffusion", "muse")


def template_names() -> list[str]:
    """Every non-vision chat template TRL ships (not the training variants)."""
    from toolgym.generation.chat import shipped_templates

    return sorted(n for n in shipped_templates() if not any(v in n for v in VISION))


def family_tokenizer(base, name: str, **extra):
    """A copy of ``base`` carrying TRL's ``name`` template, its special tokens and its end-of-turn eos."""
    from toolgym.trainers.tiny_model import with_chat_template

    tok = with_chat_template(base, name)
    for key, value in extra.items():
        setattr(tok, key, value)
    return tok


def reasoning_for(template) -> str:
    """A reasoning block in the family's syntax, spaced the way a sampling policy might write it."""
    source = template.tokenizer.chat_template
    gen = template.generation_prompt
    if "<|channel|>analysis" in source:  # gpt-oss: an analysis message, then the call's own header
        return "<|channel|>analysis<|message|>Look  it up.<|end|><|start|>assistant"
    if "<|channel>thought" in source:  # Gemma 4
        return "<|channel>thought\nLook it up.<channel|>"
    if gen.rstrip().endswith("<think>"):  # the generation prompt opened the block
        return "Look  it up.</think>"
    if "<think>" in source and "</think>" not in gen:
        return "<think>Look it up. </think>"
    return ""


class ExpertBackend(GenerationBackend):
    """Writes each env's ``oracle_action()`` (after a reasoning block) and the stop token the
    template closes such a turn with; records what it sampled per env."""

    def __init__(self, tokenizer, template, envs, reasoning: bool = True):
        self.tok, self.template, self.envs, self.reasoning = tokenizer, template, envs, reasoning
        self.sampled = {i: [] for i in range(len(envs))}
        self.calls = 0

    def generate(self, prompts, max_new_tokens):
        self.calls += 1
        out = []
        for prompt in prompts:
            text = self.tok.decode(prompt)
            i = next(k for k, e in enumerate(self.envs) if e.unwrapped._messages[1]["content"] in text)
            env = self.envs[i].unwrapped
            action = env.oracle_action()
            called = [c.name for c in env.format.parse(action, env.tools).calls]
            if self.reasoning:
                action = reasoning_for(self.template) + action
            ids = self.tok(action, add_special_tokens=False)["input_ids"]
            ids.append(self.tok.convert_tokens_to_ids(self.template.closing_token(called)))
            ids = ids[:max_new_tokens]
            self.sampled[i].append(ids)
            out.append(Generation(ids, [-0.25] * len(ids)))
        return out
