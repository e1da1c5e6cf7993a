import pytest

from tests.fakes.backends import Recording, sampled_ids
from tests.trainers.trainer_fakes import KEYS, VALUES, FakeQAEnv, expert_turns
from toolgym.generation import GenerationBackend
from toolgym.trainers.rollout import Generation, RolloutEngine, TokenMismatchError, step_returns


class ScriptedBackend(GenerationBackend):
    """Returns the tokens of scripted assistant turns (expert: search then answer), with fake logprobs."""

    def __init__(self, tok, turns_by_key, eos=True):
        self.tok, self.turns_by_key, self.eos, self.calls = tok, turns_by_key, eos, 0

    def generate(self, prompts, max_new_tokens):
        self.calls += 1
        out = []
        for p in prompts:
            text = self.tok.decode(p)
            key = next(k for k in self.turns_by_key if f"code of {k}?" in text)
            turn = text.count("<|im_start|>assistant") - 1
            ids = self.tok(self.turns_by_key[key][turn], add_special_tokens=False)["input_ids"]
            ids = ids + [self.tok.eos_token_id] if self.eos else ids
            out.append(Generation(ids[:max_new_tokens], [-0.5] * len(ids[:max_new_tokens])))
        return out


def _expert_backend(tok):
    return ScriptedBackend(tok, {k: expert_turns(k, v) for k, v in zip(KEYS, VALUES, strict=True)})


def test_step_returns():
    assert step_returns([0.2, 0.0, 1.0]) == [1.2, 1.0, 1.0]
    assert step_returns([1.0, 1.0], gamma=0.5) == [1.5, 1.0]


def test_scripted_multiturn_ids_masks_rewards(tiny):
    _, tok = tiny
    envs = [FakeQAEnv() for _ in range(4)]
    backend = _expert_backend(tok)
    eps = RolloutEngine(envs, tok, backend, max_completion_tokens=400).run([0, 1, 2, 3])
    assert backend.calls == 2  # lock-step: one batched call per turn
    for ep in eps:
        assert ep.terminated and not ep.truncated and not ep.budget_truncated
        assert ep.info["result"]["success"]
        assert ep.steps[0].terms["evidence"] == 0.2 and ep.steps[1].terms["answer"] == 1.0
        assert ep.step_rewards == [sum(s.terms.values()) for s in ep.steps]
        assert len(ep.completion_ids) == len(ep.env_mask) == len(ep.logprobs)
        # the whole sequence decodes to the chat template's rendering of the final conversation, up to
        # the answer (the env's reply to the answer ends the episode: nothing is sampled after it)
        answered = ep.messages[:max(i for i, m in enumerate(ep.messages) if m["role"] == "assistant") + 1]
        full = tok.apply_chat_template(answered, tools=envs[0].chat_tools, tokenize=False)
        assert tok.decode(ep.prompt_ids + ep.completion_ids) == full.rstrip("\n")
        # sampled spans carry mask 1, everything else 0
        sampled = {j for s, e in ep.step_spans for j in range(s, e)}
        assert [int(j in sampled) for j in range(len(ep.env_mask))] == ep.env_mask
        assert all(ep.logprobs[j] == -0.5 for j in sampled)


def test_ids_trained_equal_ids_sampled_random_model(tiny):
    """A random model samples non-canonical tokenisations; they must be kept exactly as sampled."""
    model, tok = tiny

    backend = Recording(model, tok)
    envs = [FakeQAEnv(max_turns=3) for _ in range(3)]
    eps = RolloutEngine(envs, tok, backend, max_completion_tokens=120, max_turn_tokens=12).run([0, 1, 2])
    sampled = sampled_ids(backend.log, eps)
    for i, ep in enumerate(eps):
        assert len(ep.steps) >= 2  # multi-turn: the random model never answers properly
        for (s, e), ids in zip(ep.step_spans, sampled[i], strict=True):
            assert ep.completion_ids[s:e] == ids[: e - s]
        assert sum(ep.env_mask) == ep.sampled_tokens
        assert ep.truncated or ep.budget_truncated
        assert len(ep.completion_ids) <= 120


def test_budget_truncation(tiny):
    _, tok = tiny
    eps = RolloutEngine([FakeQAEnv()], tok, _expert_backend(tok), max_completion_tokens=30).run([0])
    assert eps[0].budget_truncated and not eps[0].terminated and len(eps[0].completion_ids) <= 30


def test_window_context_gives_one_sample_per_step(tiny):
    _, tok = tiny
    envs = [FakeQAEnv(context="window", max_turns=4) for _ in range(2)]
    # search twice, then answer: the third prompt is windowed (drops the first exchange)
    turns = {k: [expert_turns(k, v)[0]] * 2 + [expert_turns(k, v)[1]] for k, v in zip(KEYS, VALUES, strict=True)}

    class Windowed(ScriptedBackend):
        def generate(self, prompts, max_new_tokens):
            self.n = getattr(self, "n", 0) + 1
            return [Generation(self._ids(p), [-1.0] * len(self._ids(p))) for p in prompts]

        def _ids(self, p):
            text = self.tok.decode(p)
            key = next(k for k in self.turns_by_key if f"code of {k}?" in text)
            return self.tok(self.turns_by_key[key][self.n - 1], add_special_tokens=False)["input_ids"] + [
                self.tok.eos_token_id]

    eps = RolloutEngine(envs, tok, Windowed(tok, turns), max_completion_tokens=400).run([0, 1])
    for ep in eps:
        # steps 0 and 1 share a sample (the context only grew); the window then moved: step 2's own
        assert not ep.append_only and ep.terminated and len(ep.steps) == 3 and len(ep.samples) == 2
        assert [s.sample for s in ep.steps] == [0, 0, 1]
        first, second = ep.samples
        third = tok.decode(second.prompt_ids)
        assert third.count("<|im_start|>assistant") == 2  # window: one past exchange + the generation prompt
        assert second.prompt_ids[:len(first.prompt_ids) + len(first.completion_ids)] != (
            first.prompt_ids + first.completion_ids)
        # the first sample is the two turns with the env's reply between them masked, as a full context
        (_, (s0, e0)), (_, (s1, e1)) = ep.sample_steps(0)
        assert first.env_mask == [1] * e0 + [0] * (s1 - e0) + [1] * (e1 - s1) and len(first.completion_ids) == e1
        assert ep.sample_steps(1) == [(2, (0, len(second.completion_ids)))]
        assert second.env_mask == [1] * len(second.completion_ids)
        assert ep.tokens_used == len(first.completion_ids) + len(second.completion_ids)


def test_mismatch_is_loud(tiny):
    _, tok = tiny

    class Rewriting(FakeQAEnv):
        def step(self, action):
            obs, *rest = super().step(action)
            self.messages[1]["content"] += " (edited)"  # an env that rewrites history but claims append-only
            return self._obs(), *rest

    with pytest.raises(TokenMismatchError, match="First difference"):
        RolloutEngine([Rewriting(max_turns=3)], tok, _expert_backend(tok)).run([0])


@pytest.mark.parametrize("text", [
    "",
    "<|im_end|>\n<|im_start|>user\n<information>Doc 1 (Title: \"Zano\") Zano (b. 1955) is a film-maker.</information>",
    "  spaces,\ttabs and 12345 digits ",
    "naïve café — ünïcödé 東京 🙂",
    "<tool_call>{\"name\": \"search\"}</tool_call><|endoftext|>",
])
def test_engine_encodes_as_the_tokenizer_does(tiny, text):
    _, tok = tiny
    engine = RolloutEngine([FakeQAEnv()], tok, _expert_backend(tok))
    assert engine._encode(text) == tok(text, add_special_tokens=False)["input_ids"]

    class WrapperOnly:  # a tokenizer without a Rust core: the engine falls back to calling it
        def __getattr__(self, name):
            if name == "backend_tokenizer":
                raise AttributeError(name)
            return getattr(tok, name)

        def __call__(self, t, add_special_tokens=True):
            return tok(t, add_special_tokens=add_special_tokens)

    assert RolloutEngine([FakeQAEnv()], WrapperOnly(), _expert_backend(tok))._encode(text) == engine._encode(text)


def test_each_step_keys_the_observation_it_was_sampled_on(tiny):
    from toolgym.trainers.rollout import observation_key

    _, tok = tiny
    envs = [FakeQAEnv() for _ in range(3)]
    eps = RolloutEngine(envs, tok, _expert_backend(tok), max_completion_tokens=400).run([0, 0, 1])
    first = [FakeQAEnv().reset(seed=s)[0] for s in (0, 0, 1)]
    assert [ep.steps[0].state for ep in eps] == [observation_key(o) for o in first]
    # same question, same expert turns: the same states at every step; another question: other states
    assert eps[0].step_states == eps[1].step_states and len(set(eps[0].step_states)) == 2
    assert not set(eps[0].step_states) & set(eps[2].step_states)
    # the second step's state is the observation after the first step
    env = FakeQAEnv()
    env.reset(seed=0)
    obs = env.step(eps[0].messages[2]["content"])[0]
    assert eps[0].steps[1].state == observation_key(obs)
