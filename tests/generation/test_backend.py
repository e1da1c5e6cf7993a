"""HFBackend's own decode loop: sampled-token logprobs equal the model's, and reusing cached
prefixes between calls changes nothing but the work done."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from toolgym.generation.backend import HFBackend, _common_prefix  # noqa: E402


def _prompts(tok):
    texts = ["Who directed the film?", "Question: where was the director born", "x"]
    return [tok(t, add_special_tokens=False)["input_ids"] for t in texts]


def _teacher_forced(model, prompt, ids):
    """The model's log-probabilities of ``ids`` after ``prompt``, in one plain forward pass."""
    with torch.no_grad():
        logp = model(torch.tensor([prompt + ids])).logits[0].float().log_softmax(-1)
    return [logp[len(prompt) - 1 + k, t].item() for k, t in enumerate(ids)]


@pytest.mark.parametrize("reuse", [True, False])
def test_sampled_logprobs_are_the_models_over_turns_of_growing_prompts(tiny, reuse):
    model, tok = tiny
    model.eval()
    torch.manual_seed(0)
    backend = HFBackend(model, tok, temperature=1.0, reuse_prefix=reuse, prefill_chunk=3)
    prompts = _prompts(tok)
    for _turn in range(3):
        gens = backend.generate(prompts, 6)
        for prompt, gen in zip(prompts, gens, strict=True):
            assert 1 <= len(gen.ids) <= 6 and len(gen.logprobs) == len(gen.ids)
            assert gen.logprobs == pytest.approx(_teacher_forced(model, prompt, gen.ids), abs=1e-4)
        # the next turn: what was sampled, then an env reply, as the rollout engine extends a context
        prompts = [p + g.ids + tok(" result", add_special_tokens=False)["input_ids"] for p, g in zip(prompts, gens)]
    assert (backend.stats["reused"] > 0) == reuse


def test_reusing_the_cache_gives_the_greedy_text_of_a_fresh_run(tiny):
    model, tok = tiny
    model.eval()
    cached, fresh = HFBackend(model, tok, temperature=0), HFBackend(model, tok, temperature=0, reuse_prefix=False)
    prompts = _prompts(tok)
    for _turn in range(3):
        a, b = cached.generate(prompts, 5), fresh.generate(prompts, 5)
        assert [g.ids for g in a] == [g.ids for g in b]
        # drop one episode, keep the others growing: cache rows are matched by prefix, not by position
        prompts = [p + g.ids + [7] for p, g in zip(prompts, a)][1:] + [prompts[0][:2]]
    assert cached.stats["prefilled"] < fresh.stats["prefilled"]


def test_identical_prompts_are_prefilled_once_and_reset_forgets(tiny):
    model, tok = tiny
    backend = HFBackend(model, tok, temperature=1.0)
    prompt = _prompts(tok)[1]
    gens = backend.generate([prompt] * 4, 3)
    assert backend.stats["prefilled"] == len(prompt) and len(gens) == 4
    backend.reset()
    backend.generate([prompt], 3)
    assert backend.stats["reused"] == 0 and backend.stats["prefilled"] == 2 * len(prompt)


def test_stop_tokens_end_a_row_and_are_kept(tiny):
    model, tok = tiny
    torch.manual_seed(0)
    backend = HFBackend(model, tok, temperature=1.0)
    first = backend.generate(_prompts(tok), 8)
    stop = first[0].ids[0]  # a token it samples: stopping on it must end that row at once
    backend = HFBackend(model, tok, temperature=1.0, stop_ids=[stop])
    torch.manual_seed(0)
    again = backend.generate(_prompts(tok), 8)
    assert again[0].ids == [stop]
    for gen in again:
        assert stop not in gen.ids[:-1]


def test_common_prefix():
    assert _common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert _common_prefix([1, 2], [1, 2, 3]) == 2
    assert _common_prefix([], [1]) == 0
    assert _common_prefix([5] * 1000 + [1], [5] * 1000 + [2]) == 1000


def test_decode_steps_skip_the_mixed_precision_wrapper_and_prefills_keep_it(tiny):
    """A model accelerate prepared for bf16 (a trainer's) has an autocast forward: prefills run in
    it, decode steps run the forward it wrapped (autocast recasts frozen weights at every step)."""
    from accelerate import Accelerator

    model, tok = tiny
    model = Accelerator(mixed_precision="bf16", cpu=True).prepare_model(model).eval()
    seen = []
    hook = model.model.layers[0].register_forward_pre_hook(
        lambda _module, args: seen.append((args[0].shape[1], torch.is_autocast_enabled("cpu"))))
    try:
        HFBackend(model, tok, temperature=0.0, stop_ids=[-1]).generate([[5, 6, 7, 8]], 4)
    finally:
        hook.remove()
    assert seen == [(4, True), (1, False), (1, False), (1, False)]
