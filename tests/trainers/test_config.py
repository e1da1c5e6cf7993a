from pathlib import Path

import pytest

from toolgym.trainers.config import TrainConfig, apply_overrides

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("name", ["demo_cpu.yaml", "grpo_qwen2.5-3b_hotpotqa_2wiki.yaml", "smollm2_hotpotqa.yaml",
                                  "smollm2_agent_r1.yaml"])
def test_shipped_configs_load(name):
    cfg = TrainConfig.from_yaml(CONFIGS / name)
    assert cfg.envs and cfg.grpo["output_dir"]
    assert isinstance(cfg.grpo["learning_rate"], float)


def test_agent_r1_recipe_benchmarks_records_it_did_not_train_on():
    """The bench: section of the SmolLM2 recipe is a valid bench config whose records start where each
    env's training records end, over the same files and env settings."""
    from toolgym.benchmarks.cli import file_values
    from toolgym.benchmarks.runner import BenchConfig

    path = CONFIGS / "smollm2_agent_r1.yaml"
    train, bench = TrainConfig.from_yaml(path), BenchConfig(**file_values(str(path)))
    assert sorted(bench.envs) == sorted(spec.id for spec in train.envs)
    for spec in train.envs:
        held_out = bench.kwargs_for(spec.id)
        assert held_out.pop("offset") == spec.kwargs["limit"], spec.id
        assert held_out == {k: v for k, v in spec.kwargs.items() if k != "limit"}, spec.id
    assert sum(spec.kwargs["limit"] for spec in train.envs) == train.warm_start.n_episodes


def test_bench_section_must_be_a_mapping():
    with pytest.raises(ValueError, match="bench must be a mapping"):
        TrainConfig.from_dict({"model": "m", "envs": [{"id": "MultiHopQA-v0"}], "bench": ["n=3"]})


def test_demo_cpu_config_trains_on_the_demo_world():
    """configs/demo_cpu.yaml continues `toolgym demo`'s warm model: same env, world and prompt."""
    from toolgym.trainers.demo import DemoConfig, env_kwargs

    cfg, demo = TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml"), DemoConfig()
    assert cfg.envs[0].kwargs == env_kwargs(demo, "train")
    assert cfg.envs[0].system_prompt == demo.system_prompt


def test_overrides_nested_and_typed():
    cfg = TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml", ["grpo.learning_rate=1e-3", "credit=step", "lora.r=4",
                                                            "envs.0.kwargs.max_turns=5"])
    assert cfg.grpo["learning_rate"] == 1e-3 and cfg.credit == "step" and cfg.lora.r == 4
    assert cfg.envs[0].kwargs["max_turns"] == 5
    assert cfg.grpo_config().learning_rate == 1e-3


@pytest.mark.parametrize("override,message", [
    ("grpo.learnig_rate=1e-3", "Did you mean 'learning_rate'"),
    ("credt=step", "Did you mean 'credit'"),
    ("lora.rnk=4", "Did you mean 'r'"),
    ("credit=stp", "Did you mean 'step'"),
    ("gamma=0", "gamma must be in"),
])
def test_bad_keys_and_values_name_the_fix(override, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml", [override])


def test_env_entry_keys_checked():
    with pytest.raises(ValueError, match="Did you mean 'kwargs'"):
        TrainConfig.from_dict({"model": "m", "envs": [{"id": "MultiHopQA-v0", "kwarg": {}}]})


def test_override_syntax_error():
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["credit"])


@pytest.mark.parametrize("override,message", [
    ("algorithm=rlo", "Did you mean 'rloo'"),
    ("ppo.lamb=0.9", "Did you mean 'lam'"),
    ("ppo.credit=step", "Unknown config key 'ppo.credit'"),  # credit is top-level, shared with GRPO
    ("ppo.cliprange=1.5", "ppo.cliprange must be in"),
])
def test_algorithm_and_ppo_section_are_validated(override, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml", ["algorithm=ppo", override])


def test_ppo_settings_take_the_shared_top_level_keys():
    cfg = TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml", ["algorithm=rloo", "credit=step", "gamma=0.9",
                                                            "ppo.vf_coef=0.5"])
    settings = cfg.settings()
    assert (settings.algorithm, settings.credit, settings.gamma, settings.vf_coef) == ("rloo", "step", 0.9, 0.5)


@pytest.mark.parametrize("data,message", [
    ({"envs": [{"id": "MultiHopQA-v0"}]}, "missing key 'model'"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v0"}], "gamma": "high"}, "gamma must be a number, got str 'high'"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v0"}], "max_turn_tokens": "many"}, "max_turn_tokens must be an integer"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v0"}], "lora": {"r": [4]}}, "lora.r must be an integer, got list"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v0", "weight": "x"}]}, "envs\\[\\].weight must be a number"),
    ({"model": "m", "envs": {"id": "MultiHopQA-v0"}}, "envs must be a list"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v0"}], "grpo": {"learning_rate": "fast"}},
     "grpo.learning_rate must be a number, got str 'fast'"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v0"}], "grpo": {"max_steps": 2.5}}, "grpo.max_steps must be an integer"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v0"}], "algorithm": "ppo", "ppo": {"lam": "x"}}, "ppo.lam must be a number"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v9"}]}, "Unknown env id 'MultiHopQA-v9'. Did you mean 'MultiHopQA-v0'"),
    ({"model": "m", "envs": [{"id": "MultiHopQA-v0", "kwargs": {"topk": 3}}]}, "Did you mean 'top_k'"),
])
def test_missing_keys_wrong_types_and_unknown_envs_are_value_errors(data, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(data)


def test_check_startable_needs_the_model_and_a_checkpoint_to_resume(tmp_path):
    cfg = TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml", [f"model={tmp_path / 'runs/demo/warm'}"])
    with pytest.raises(FileNotFoundError, match="toolgym demo rl_steps=0 --output-dir .*runs/demo"):
        cfg.check_startable()
    (tmp_path / "runs/demo/warm").mkdir(parents=True)
    cfg.grpo["output_dir"] = str(tmp_path / "out")
    cfg.check_startable()  # a hub id or an existing directory, no resume: fine
    with pytest.raises(FileNotFoundError, match="no checkpoint-\\* directory in"):
        cfg.check_startable(resume=True)
    (tmp_path / "out" / "checkpoint-2").mkdir(parents=True)
    cfg.check_startable(resume=True)
    with pytest.raises(FileNotFoundError, match="no such checkpoint directory"):
        cfg.check_startable(resume=str(tmp_path / "out" / "checkpoint-9"))
    TrainConfig.from_dict({"model": "Qwen/Qwen2.5-0.5B", "envs": [{"id": "MultiHopQA-v0"}]}).check_startable()


def test_gigpo_credit_and_gspo_pass_through():
    cfg = TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml", ["credit=gigpo", "step_weight=0.5", "gamma=0.95",
                                                            "grpo.importance_sampling_level=sequence"])
    assert (cfg.credit, cfg.step_weight, cfg.step_similarity) == ("gigpo", 0.5, "exact")
    assert cfg.grpo_config().importance_sampling_level == "sequence"  # GSPO: TRL's own option, unchanged
    settings = TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml", ["algorithm=rloo", "credit=gigpo",
                                                                 "step_weight=0.3"]).settings()
    assert (settings.credit, settings.step_weight) == ("gigpo", 0.3)


@pytest.mark.parametrize("override,message", [
    ("credit=gipgo", "Did you mean 'gigpo'"),
    ("step_weight=-1", "step_weight must be a number >= 0"),
    ("step_similarity=exakt", "Did you mean 'exact'"),
    ("ppo.step_weight=1", "Unknown config key 'ppo.step_weight'"),  # top-level, shared with GRPO
])
def test_gigpo_settings_are_validated(override, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_yaml(CONFIGS / "demo_cpu.yaml", [override])
