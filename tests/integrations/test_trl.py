"""toolgym envs in a plain trl.GRPOTrainer through environment_factory."""

from __future__ import annotations

import json
import re

import gymnasium as gym
import pytest

pytest.importorskip("trl", reason="the TRL integration needs the 'trl' extra: pip install 'toolgym[trl]'")
pytest.importorskip("peft", reason="the TRL integration test trains LoRA: pip install 'toolgym[trl]'")

import torch  # noqa: E402

from toolgym.integrations.trl import factory, tool_method  # noqa: E402

ENVS = {"MultiHopQA-v0": {"top_k": 1}, "ToolMath-v0": {}}
_CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.S)


@pytest.mark.slow  # builds all four task families
def test_tool_methods_render_the_env_schemas_exactly():
    """TRL turns methods into schemas with transformers' get_json_schema: they give back the env's own."""
    from transformers.utils import get_json_schema

    for env_id in ("MultiHopQA-v0", "ToolMath-v0", "SQLQuery-v0", "Wordle-v0"):
        envs = factory(env_id)
        env = envs()
        for schema in envs.tools:
            got = get_json_schema(getattr(env, schema["function"]["name"]))["function"]
            want = schema["function"]
            assert got["name"] == want["name"] and got["description"] == want["description"]
            assert got["parameters"].get("required", []) == want["parameters"].get("required", [])
            for arg, spec in want["parameters"]["properties"].items():
                assert got["parameters"]["properties"][arg]["type"] == spec["type"]
                assert got["parameters"]["properties"][arg]["description"] == spec["description"]


def test_tool_names_that_trl_would_not_expose_are_refused():
    for bad in ("reset", "_hidden", "get_reward", "not-an-identifier"):
        with pytest.raises(ValueError, match="cannot be a TRL tool"):
            tool_method({"name": bad, "description": "x", "parameters": {"type": "object", "properties": {}}})


def test_calls_step_the_env_and_the_return_matches_a_direct_rollout():
    envs = factory("ToolMath-v0")
    env = envs()
    assert env.reset(prompt=[{"role": "user", "content": ""}], seed=3).endswith(env.episode.task)  # instructions first
    twin = gym.make("ToolMath-v0")
    twin.reset(seed=3)
    direct = 0.0
    while not env.episode.done:
        action = twin.unwrapped.oracle_action()
        for call in twin.unwrapped.format.parse(action, twin.unwrapped.tools).calls:
            out = getattr(env, call.name)(**call.arguments)
            assert isinstance(out, str) and out
            direct += twin.step(twin.unwrapped.format.write_call(call.name, call.arguments))[1]
    assert env.episode.terminated and env.episode.info["result"]["success"]
    assert env.episode.episode_return == pytest.approx(direct)
    assert sum(env.episode.terms.values()) == pytest.approx(direct)
    with pytest.raises(RuntimeError, match="episode has ended"):
        env.answer(answer="1")


def test_rows_must_pick_the_question():
    env = factory("MultiHopQA-v0")()
    with pytest.raises(ValueError, match="gives no seed"):
        env.reset(prompt=[{"role": "user", "content": ""}])
    with pytest.raises(ValueError, match="append-only"):
        factory("MultiHopQA-v0", context="window")


def test_a_last_message_without_a_call_is_the_last_action():
    envs = factory("MultiHopQA-v0")
    env = envs()
    env.reset(prompt=envs.rows(1)[0]["prompt"], seed=0)
    env.search(query="anything")
    fmt = dict(zip(envs.terms, (f([[{"role": "assistant", "content": "I give up."}]], environments=[env])[0]
                               for f in envs.reward_funcs()), strict=True))
    assert fmt["format"] == pytest.approx(-0.1) and fmt["valid_call"] == pytest.approx(0.02)
    assert env.episode.actions[-1] == "I give up." and not env.episode.done
    # scored once, however many reward functions read it
    assert [f.__name__ for f in envs.reward_funcs()] == list(envs.terms)
    assert len(env.episode.actions) == 2


def test_reward_funcs_of_mixed_envs_cover_every_term_once():
    from toolgym.integrations.trl import reward_funcs

    qa, math = factory("MultiHopQA-v0"), factory("ToolMath-v0")
    funcs = reward_funcs(qa, math)
    names = [f.__name__ for f in funcs]
    assert len(names) == len(set(names)) and set(names) == set(qa.terms) | set(math.terms)
    env = math()
    env.reset(seed=0)
    env.answer(answer="0")
    values = [f([[{"role": "assistant", "content": "", "tool_calls": [{}]}]], environments=[env])[0] for f in funcs]
    assert sum(values) == pytest.approx(env.episode.episode_return)
    assert dict(zip(names, values, strict=True))["evidence"] == 0.0  # a MultiHopQA term, absent from ToolMath
    assert funcs[0]([[]], environments=[object()]) == [None]
    assert math.rows(2, environment="math")[1] == {**math.rows(2)[1], "environment": "math"}


# -- two optimizer steps of a plain trl.GRPOTrainer (on the tiny model of tests/conftest.py) ----------
def _scripted_trainer_class(tasks):
    """A GRPOTrainer whose generation is scripted: a random tiny model never calls tools.

    ``tasks`` maps each dataset task's text to (env id, kwargs, seed). Rollout 2k of a batch follows
    the env's oracle; rollout 2k+1 answers "wrong" at once: the group gets different returns, hence
    non-zero advantages. Everything else (tool parsing, the tool loop, the env calls, rewards, the
    loss) is TRL's own.
    """
    from trl import GRPOTrainer

    class Scripted(GRPOTrainer):
        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
            tok = self.processing_class
            out = []
            for i, ids in enumerate(prompt_ids):
                text = tok.decode(ids, skip_special_tokens=False)
                out.append(tok.encode(self._next_message(text, i) + "<|im_end|>", add_special_tokens=False))
            return out, None

        def _next_message(self, context: str, position: int) -> str:
            head, _, rest = context.partition("<|im_start|>assistant")
            (env_id, kwargs, seed), = [v for task, v in tasks.items() if task in head]
            twin = gym.make(env_id, **kwargs)
            twin.reset(seed=seed)
            calls = [json.loads(c) for c in _CALL.findall(rest)]
            ended = False
            for call in calls:  # replay what the rollout did so far, one call a step as the adapter does
                *_, term, trunc, _ = twin.step(twin.unwrapped.format.write_call(call["name"], call["arguments"]))
                ended = term or trunc
            if ended:
                return "Done."
            if (not calls and position % 2 == 1) or (calls and calls[0]["name"] == "answer"):
                return _qwen_call("answer", {"answer": "wrong"})
            base = twin.unwrapped
            return "".join(_qwen_call(c.name, c.arguments)
                           for c in base.format.parse(base.oracle_action(), base.tools).calls)

    return Scripted


def _qwen_call(name, arguments):
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


@pytest.mark.slow
@pytest.mark.parametrize("case", [*ENVS, "mixed"])
def test_grpo_trainer_trains_on_the_env(case, tiny_dir, tmp_path, monkeypatch):
    """Two optimizer steps of a plain trl.GRPOTrainer on one toolgym id, or on a dict of two."""
    from datasets import concatenate_datasets
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import GRPOConfig

    from toolgym.integrations.trl import reward_funcs

    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    if case == "mixed":
        factories = {"qa": factory("MultiHopQA-v0", **ENVS["MultiHopQA-v0"]), "math": factory("ToolMath-v0")}
        dataset = concatenate_datasets([f.dataset(2, seed=10, environment=k) for k, f in factories.items()])
        environment_factory, funcs = factories, reward_funcs(*factories.values())
    else:
        envs = factory(case, **ENVS[case])
        factories, dataset = {None: envs}, envs.dataset(4, seed=10)
        environment_factory, funcs = envs, envs.reward_funcs()
    tasks = {}
    for key, f in factories.items():
        twin = gym.make(f.env_id, **f.env_kwargs)
        for row in dataset:
            if row.get("environment") == key:
                tasks[twin.reset(seed=row["seed"])[0][1]["content"]] = (f.env_id, f.env_kwargs, row["seed"])
    seen = []  # (term, env id, seed, actions, value, completion) of every scored rollout

    def spy(reward):
        def wrapped(completions, environments=None, **kw):
            values = reward(completions, environments=environments, **kw)
            seen.extend((reward.__name__, env.env_id, env.episode.seed, tuple(env.episode.actions), v, c)
                        for env, v, c in zip(environments, values, completions, strict=True))
            return values

        wrapped.__name__ = reward.__name__
        return wrapped

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=3000, max_steps=2, learning_rate=5e-2, logging_steps=1,
                      save_strategy="no", report_to="none", use_cpu=True, bf16=False, seed=0, beta=0.0,
                      disable_tqdm=True, max_tool_calling_iterations=8)
    trainer = _scripted_trainer_class(tasks)(
        str(tiny_dir), args=args, train_dataset=dataset, environment_factory=environment_factory,
        reward_funcs=[spy(f) for f in funcs], processing_class=AutoTokenizer.from_pretrained(tiny_dir),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if "lora_" in n}
    trainer.train()

    # the LoRA adapter moved
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters() if n in before)
    # tools were called through TRL's loop and run by the env: the completions hold the env's results
    logs = trainer.state.log_history
    assert all(step["tools/call_frequency"] > 0 for step in logs if "tools/call_frequency" in step)
    rollouts = {}
    for term, env_id, seed, actions, value, completion in seen:
        rollouts.setdefault((env_id, seed, actions), {})[term] = value
        tool_results = [m["content"] for m in completion if m["role"] == "tool"]
        assert tool_results and "Answer received." in tool_results
    assert len(rollouts) >= 4 and any(len(a) > 2 for *_, a in rollouts)
    assert {env_id for env_id, *_ in rollouts} == {f.env_id for f in factories.values()}
    # every rollout's reward (the sum of its terms) is what the env returns for the same actions
    returns = []
    for (env_id, seed, actions), terms in rollouts.items():
        replay = gym.make(env_id, **ENVS.get(env_id, {}))
        replay.reset(seed=seed)
        expected = sum(replay.step(a)[1] for a in actions)
        assert set(terms) == {f.__name__ for f in funcs}
        assert sum(terms.values()) == pytest.approx(expected, abs=1e-9), (env_id, seed, actions)
        returns.append(expected)
    assert max(returns) > 0.9 and min(returns) < 0.5  # the oracle and the wrong answers
    for f in funcs:
        assert f"rewards/{f.__name__}/mean" in logs[0]
