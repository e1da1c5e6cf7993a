import json

import pytest

from toolgym.trainers.demo import DemoConfig, run_demo


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["grpo", "ppo"])
def test_demo_pipeline_end_to_end(tmp_path, algorithm):
    cfg = DemoConfig(output_dir=str(tmp_path), algorithm=algorithm, n_people=80, fresh_worlds=1, vocab_size=500, warm_steps=4,
                     warm_pool=40, warm_batch=4, grpo_steps=1, completions_per_step=8, num_generations=4,
                     eval_questions=2, eval_samples=1, eval_every=1, max_turn_tokens=8, max_completion_length=160)
    r = run_demo(cfg, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "demo.png").stat().st_size > 0 and (tmp_path / "final" / "adapter_config.json").is_file()
    assert (tmp_path / "final" / "value_head.safetensors").is_file() == (algorithm == "ppo")
    assert saved["curve"][0]["step"] == 0 and saved["curve"][-1]["step"] == 1
    for key in ("before", "after", "naive_rag", "before_greedy", "after_greedy"):
        assert 0.0 <= r[key]["em"] <= 1.0 and r[key]["episodes"] > 0


def test_demo_config_validates():
    with pytest.raises(ValueError, match="multiple of num_generations"):
        DemoConfig(completions_per_step=10, num_generations=4)
    with pytest.raises(ValueError, match="credit"):
        DemoConfig(credit="steps")
    with pytest.raises(ValueError, match="Did you mean 'rloo'"):
        DemoConfig(algorithm="rlo")
