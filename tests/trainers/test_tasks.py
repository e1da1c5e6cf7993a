"""The env mix and the task rows TRL iterates (no TRL needed)."""

import json

import pytest

from toolgym.trainers.tasks import EnvSpec, SystemPrompt, task_dataset


@pytest.mark.parametrize("kwargs,message", [
    ({"id": "MultiHopQA-v9"}, "Unknown env id 'MultiHopQA-v9'. Did you mean 'MultiHopQA-v0'"),
    ({"id": "MultiHopQA-v0", "kwargs": {"topk": 3}}, "Did you mean 'top_k'"),
    ({"id": "MultiHopQA-v0", "weight": -1}, r"envs\[\].weight must be a number >= 0, got -1"),
    ({"id": "MultiHopQA-v0", "weight": True}, r"envs\[\].weight must be a number >= 0, got True"),
    ({"id": "MultiHopQA-v0", "kwargs": [1]}, r"envs\[\].kwargs must be a mapping, got list"),
    ({"id": ""}, r"envs\[\].id must be a non-empty env id string"),
])
def test_env_spec_checks_before_anything_is_built(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EnvSpec(**kwargs)


def test_system_prompt_replaces_only_the_system_message():
    env = EnvSpec("MultiHopQA-v0", {"format": "tags", "world": {"n_people": 40}}, system_prompt="Be brief.").make()
    assert isinstance(env, SystemPrompt)
    obs, _ = env.reset(seed=0)
    plain, _ = EnvSpec("MultiHopQA-v0", {"format": "tags", "world": {"n_people": 40}}).make().reset(seed=0)
    assert obs[0] == {**plain[0], "content": "Be brief."} and obs[1:] == plain[1:]


def test_native_format_needs_the_tokenizer():
    with pytest.raises(ValueError, match="format 'native' .* needs its tokenizer"):
        EnvSpec("MultiHopQA-v0", {"format": "native"}).make()


def test_task_dataset_draws_envs_by_weight_with_a_seed():
    pytest.importorskip("datasets")
    envs = [EnvSpec("MultiHopQA-v0", weight=3.0), EnvSpec("ToolMath-v0", weight=1.0), EnvSpec("SQLQuery-v0", weight=0)]
    rows = [json.loads(p) for p in task_dataset(envs, 400, seed=1)["prompt"]]
    counts = [sum(r["env"] == k for r in rows) for k in range(3)]
    assert counts[2] == 0 and 250 < counts[0] < 350 and counts[0] + counts[1] == 400
    assert task_dataset(envs, 400, seed=1)["prompt"] == [json.dumps(r) for r in rows]  # the seed decides
    assert task_dataset(envs, 400, seed=2)["prompt"] != [json.dumps(r) for r in rows]
    with pytest.raises(ValueError, match="positive sum"):
        task_dataset([EnvSpec("MultiHopQA-v0", weight=0)], 4)
