import json
import re

import pytest

from toolgym.trainers.demo import (
    DemoConfig,
    compare_algorithms,
    copy_accuracy,
    env_kwargs,
    make_env,
    rl_env_specs,
    run_demo,
    sampled_spans,
    warm_trajectories,
)


@pytest.mark.slow
@pytest.mark.parametrize(("algorithm", "context"), [("grpo", "full"), ("ppo", "full"), ("grpo", "window")])
def test_demo_pipeline_end_to_end(tmp_path, algorithm, context):
    cfg = DemoConfig(output_dir=str(tmp_path), algorithm=algorithm, context=context, n_people=80, fresh_worlds=1, vocab_size=500, warm_steps=4,
                     warm_pool=40, warm_batch=4, rl_steps=1, completions_per_step=8, num_generations=4,
                     eval_questions=2, eval_samples=1, eval_every=1, max_turn_tokens=8, max_completion_length=160)
    r = run_demo(cfg, progress=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "demo.png").stat().st_size > 0 and (tmp_path / "final" / "adapter_config.json").is_file()
    assert (tmp_path / "final" / "value_head.safetensors").is_file() == (algorithm == "ppo")
    assert saved["curve"][0]["step"] == 0 and saved["curve"][-1]["step"] == 1
    for key in ("before", "after", "naive_rag", "before_greedy", "after_greedy"):
        assert 0.0 <= r[key]["em"] <= 1.0 and r[key]["episodes"] > 0


TINY_DEMO = dict(n_people=80, fresh_worlds=1, vocab_size=500, warm_steps=4, warm_pool=40, warm_batch=4, rl_steps=2,
                 completions_per_step=8, num_generations=4, eval_questions=2, eval_samples=1, eval_every=1,
                 max_turn_tokens=8, max_completion_length=160)


@pytest.mark.slow
def test_compare_algorithms_from_one_warm_model(tmp_path):
    runs = compare_algorithms(DemoConfig(output_dir=str(tmp_path), **TINY_DEMO), ["grpo", "rloo"], progress=False)
    curves = json.loads((tmp_path / "curves.json").read_text())["algorithms"]
    assert list(curves) == ["grpo", "rloo"] and (tmp_path / "curves.png").stat().st_size > 0
    assert [p["step"] for p in curves["rloo"]["curve"]] == [0, 1, 2]
    for name in ("grpo", "rloo"):  # each trains its own adapter
        assert (tmp_path / name / "final" / "adapter_config.json").is_file()
        assert json.loads((tmp_path / name / "results.json").read_text())["config"]["algorithm"] == name
    # a later run can start RL from the saved warm model instead of warming again
    again = run_demo(DemoConfig(output_dir=str(tmp_path / "reuse"), warm_model=str(tmp_path / "warm"), **TINY_DEMO),
                     progress=False)
    assert not (tmp_path / "reuse" / "warm").exists() and again["timings"]["warm_start_s"] == 0.0
    assert again["copy_accuracy"] == runs["grpo"]["copy_accuracy"]
    assert again["before"] == runs["grpo"]["before"]  # same weights, same seeded evaluation


@pytest.mark.slow
def test_no_rl_steps_saves_the_warm_model_and_stops(tmp_path, capsys):
    r = run_demo(DemoConfig(output_dir=str(tmp_path), **{**TINY_DEMO, "rl_steps": 0}))
    assert (tmp_path / "warm" / "config.json").is_file() and r["warm_model"] == str(tmp_path / "warm")
    assert not (tmp_path / "final").exists() and not (tmp_path / "grpo").exists()
    assert f"Warm model and tokenizer: {tmp_path / 'warm'}" in capsys.readouterr().out


@pytest.mark.slow
def test_demo_on_qwen3_with_thinking_on_trains_the_ids_it_sampled(tmp_path, monkeypatch):
    """Warm start and two GRPO steps with TRL's qwen3 template and enable_thinking: the tokenizer carries
    the template, no empty reasoning block is pre-written, and the ids trained are the ids sampled."""
    from toolgym.generation.chat import template_name
    from toolgym.trainers.grpo import ToolGRPOTrainer
    from toolgym.trainers.tiny_model import load_tiny

    batches = []
    generate = ToolGRPOTrainer._generate_and_score_completions

    def spy(self, inputs):
        out = generate(self, inputs)
        assert self.env_rollout.chat_template_kwargs == {"enable_thinking": True}
        batches.append((out, list(self.env_rollout.last_episodes), self.processing_class))
        return out

    monkeypatch.setattr(ToolGRPOTrainer, "_generate_and_score_completions", spy)
    cfg = DemoConfig(output_dir=str(tmp_path), chat_template="qwen3", chat_template_kwargs={"enable_thinking": True},
                     **TINY_DEMO)
    r = run_demo(cfg, progress=False)
    assert r["curve"][-1]["step"] == 2 and 0.0 <= r["after"]["em"] <= 1.0
    _, warm_tok = load_tiny(tmp_path / "warm")
    assert template_name(warm_tok) == "qwen3" and warm_tok.eos_token == "<|im_end|>"
    assert len(batches) == 2
    assert any(len(ep.steps) > 1 for _, eps, _ in batches for ep in eps)
    for out, eps, tok in batches:
        for b, ep in enumerate(eps):
            n = len(ep.completion_ids)
            assert out["completion_ids"][b, :n].tolist() == ep.completion_ids
            assert out["tool_mask"][b, :n].tolist() == ep.env_mask
            assert out["prompt_ids"][b][out["prompt_mask"][b].bool()].tolist() == ep.prompt_ids
            assert tok.decode(ep.prompt_ids).endswith("<|im_start|>assistant\n")  # thinking on: no empty block
            env_text = tok.decode([t for t, m in zip(ep.completion_ids, ep.env_mask, strict=True) if m == 0])
            assert "</think>" not in env_text and env_text.count("<|im_start|>assistant\n") == len(ep.steps) - 1


def test_demo_cli_reads_chat_template_kwargs(monkeypatch):
    import toolgym.trainers.demo as demo
    from toolgym.cli import main

    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg))
    assert main(["demo", "chat_template=qwen3", "chat_template_kwargs.enable_thinking=true"]) == 0
    assert seen[0].chat_template == "qwen3" and seen[0].chat_template_kwargs == {"enable_thinking": True}
    assert main(["demo", "chat_template_kwargs={a: 1}", "chat_template_kwargs.enable_thinking=false"]) == 0
    assert seen[1].chat_template_kwargs == {"a": 1, "enable_thinking": False}


def test_sampled_spans_are_the_runs_of_sampled_tokens():
    assert sampled_spans([1, 1, 0, 0, 1, 0, 1]) == [(0, 2), (4, 5), (6, 7)]
    assert sampled_spans([0, 0]) == [] and sampled_spans([]) == []


def test_copy_accuracy_scores_the_names_not_the_tags(tiny):
    import torch

    _, tok = tiny
    ids = lambda text: tok(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    prompt = ids("Question: Where was the director of Kike born?")
    turns = [ids("<search> Kike</search>"), ids("<search> Balith</search>"), ids("<answer> Atil</answer>")]
    env = ids("<information>x</information>")
    completion, mask = [], []
    for k, turn in enumerate(turns):
        completion += turn
        mask += [1] * len(turn)
        if k < 2:
            completion += env
            mask += [0] * len(env)
    seq = prompt + completion

    class Predicts:
        """A 'model' whose argmax at position i is ``next_ids[i]``."""

        training = False

        def __init__(self, next_ids):
            self.next_ids = next_ids

        def eval(self):
            return self

        def train(self, mode=True):
            return self

        def __call__(self, x):
            logits = torch.zeros(1, len(self.next_ids), len(tok))
            logits[0, torch.arange(len(self.next_ids)), torch.tensor(self.next_ids)] = 1.0
            return type("Out", (), {"logits": logits})

    truth = seq[1:] + [0]
    assert copy_accuracy(Predicts(truth), tok, [(prompt, completion, mask)]) == [1.0, 1.0, 1.0]
    # the wrong tag at the start of turn 2 does not count; a wrong name token in turn 3 does
    wrong = list(truth)
    turn2 = len(prompt) + len(turns[0]) + len(env)
    wrong[turn2 - 1] = tok.convert_tokens_to_ids("<answer>") if "<answer>" in tok.get_vocab() else wrong[turn2 - 1] + 1
    turn3_name = len(prompt) + len(turns[0]) + len(env) + len(turns[1]) + len(env) + 1
    wrong[turn3_name] = (wrong[turn3_name] + 1) % len(tok)
    assert copy_accuracy(Predicts(wrong), tok, [(prompt, completion, mask)]) == [1.0, 1.0, 0.0]


def test_demo_config_validates():
    with pytest.raises(ValueError, match="multiple of num_generations"):
        DemoConfig(completions_per_step=10, num_generations=4)
    with pytest.raises(ValueError, match="credit"):
        DemoConfig(credit="steps")
    with pytest.raises(ValueError, match="Did you mean 'rloo'"):
        DemoConfig(algorithm="rlo")
    with pytest.raises(ValueError, match="warm_world_share must be in \\[0, 1\\], got 1.5"):
        DemoConfig(warm_world_share=1.5)
    with pytest.raises(ValueError, match="'windw'.*Did you mean 'window'"):
        DemoConfig(context="windw")


def test_window_context_reaches_the_acting_envs_only():
    cfg = DemoConfig(n_people=80, context="window", context_window=1)
    assert [s.make().unwrapped.context_append_only for s in rl_env_specs(cfg)] == [False]
    assert env_kwargs(cfg, "test", acting=True)["context_window"] == 1
    assert "context" not in env_kwargs(cfg, "train")  # scripted warm-start episodes stay on full contexts
    assert "context" not in env_kwargs(DemoConfig(n_people=80), "test", acting=True)


def test_demo_cli_rejects_an_unknown_algorithm_before_any_work(capsys):
    from toolgym.cli import main

    for argv, message in [
        (["demo", "--compare", "grpo,rlo"], "toolgym demo: .*got 'rlo'. Did you mean 'rloo'"),
        (["demo", "credit=steps"], "credit must be one of outcome, step, gigpo; got 'steps'. Did you mean 'step'?"),
        (["demo", "--compare", "credit", "arms=outcome,gipgo"], "Unknown credit arm 'gipgo'. Did you mean 'gigpo'"),
        (["demo", "warm_steps=many"], "warm_steps='many' is not a valid int \\(default 4000\\)"),
        (["demo", "short_names=ture"], "short_names='ture' is not a valid bool"),
        (["demo", "warm_mix=(0.5, 0.5, 0.5)"], "warm_mix must be three shares summing to 1, got \\(0.5, 0.5, 0.5\\)"),
        (["demo", "warm_stpes=3"], "unknown setting 'warm_stpes=3'. Did you mean 'warm_steps'"),
        (["demo", "rl_steps=-1"], "rl_steps must be >= 0"),
        (["demo", "chat_template=qwen4"], "Unknown chat_template 'qwen4'. Did you mean 'qwen3'"),
        (["demo", "chat_template_kwargs=thinking"], "chat_template_kwargs='thinking' is not a valid dict"),
        (["demo", "warm_model=runs/nowhere/warm"], "Build it with: toolgym demo rl_steps=0 --output-dir runs/nowhere"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_rl_worlds_add_unseen_worlds_to_the_rl_tasks():
    cfg = DemoConfig(n_people=80, rl_worlds=2)
    specs = rl_env_specs(cfg)
    assert [s.kwargs["world"]["seed"] for s in specs] == [0, 2000, 2001]
    assert all(s.kwargs["split"] == "train" and s.weight == 1.0 for s in specs)
    held_out = make_env(cfg, env_kwargs(cfg, "test"))
    held_names = {t for ex in held_out.unwrapped.examples for t in ex.supporting_titles}
    for spec in specs[1:]:  # unseen worlds: none of the held-out questions' films or people
        rl_names = {t for ex in spec.make().unwrapped.examples for t in ex.supporting_titles}
        assert rl_names and not rl_names & held_names
    assert [s.kwargs["world"]["seed"] for s in rl_env_specs(DemoConfig(n_people=80))] == [0]


def test_warm_pool_gives_the_training_world_its_share(tiny):
    import numpy as np

    _, tok = tiny
    cfg = DemoConfig(n_people=80)
    worlds = [[make_env(cfg, env_kwargs(cfg, "train", world_seed=w)) for _ in range(4)] for w in (0, 1000, 1001)]
    questions = [{ex.question for ex in envs[0].unwrapped.examples} for envs in worlds]

    def per_world(samples):
        texts = [tok.decode(p) for p, _, _ in samples]
        return [sum(any(q in t for q in qs) for t in texts) for qs in questions]

    rng = np.random.default_rng(0)
    assert per_world(warm_trajectories(tok, worlds, 20, (1.0, 0.0, 0.0), rng, 160, first_share=0.1)) == [2, 9, 9]
    assert per_world(warm_trajectories(tok, worlds, 20, (1.0, 0.0, 0.0), rng, 160)) == [10, 5, 5]
    assert len(warm_trajectories(tok, worlds[:1], 7, (1.0, 0.0, 0.0), rng, 160, first_share=0.1)) == 7


@pytest.mark.parametrize(("template", "kwargs", "prompt_end"), [
    ("qwen3", {"enable_thinking": False}, "<|im_start|>assistant\n<think>\n\n</think>\n\n"),
    ("llama3_1", {}, "<|start_header_id|>assistant<|end_header_id|>\n\n"),
])
def test_warm_pool_scripts_expert_turns_under_any_template(tiny, template, kwargs, prompt_end):
    import numpy as np

    from toolgym.trainers.tiny_model import with_chat_template

    tok = with_chat_template(tiny[1], template)
    cfg = DemoConfig(n_people=80)
    envs = [make_env(cfg, env_kwargs(cfg, "train")) for _ in range(4)]
    pool = warm_trajectories(tok, [envs], 6, (1.0, 0.0, 0.0), np.random.default_rng(0), 400,
                             chat_template_kwargs=kwargs)
    examples = {ex.question: ex for ex in envs[0].unwrapped.examples}
    for prompt, completion, mask in pool:
        text = tok.decode(prompt)
        assert text.endswith(prompt_end)
        ex = next(ex for q, ex in examples.items() if q in text)
        film, director = ex.supporting_titles[:2]
        turns = [tok.decode(completion[a:b], skip_special_tokens=True) for a, b in sampled_spans(mask)]
        assert turns == [f"<search> {film}</search>", f"<search> {director}</search>", f"<answer> {ex.answer}</answer>"]


def test_qwen3_with_thinking_on_renders_the_demo_as_qwen2_5_does(tiny):
    """With a system prompt, no tools and thinking on, Qwen3's template writes the demo's episodes in the
    same ids as Qwen2.5's (so the demo's figures carry over); thinking off pre-writes an empty block."""
    import numpy as np

    from toolgym.trainers.tiny_model import with_chat_template

    tok = tiny[1]
    cfg = DemoConfig(n_people=80)
    envs = [make_env(cfg, env_kwargs(cfg, "train")) for _ in range(4)]

    def pool(t, **kw):
        return warm_trajectories(t, [envs], 12, (0.4, 0.35, 0.25), np.random.default_rng(0), 320, **kw)

    qwen3 = with_chat_template(tok, "qwen3")
    assert pool(qwen3, chat_template_kwargs={"enable_thinking": True}) == pool(tok)
    off = pool(qwen3, chat_template_kwargs={"enable_thinking": False})
    assert all(qwen3.decode(p).endswith("<think>\n\n</think>\n\n") for p, _, _ in off)


@pytest.mark.slow
def test_forked_workers_build_the_same_warm_pool_as_one_process(tiny_dir):
    import subprocess
    import sys

    # a fresh interpreter: the suite's own threads make warm_trajectories stay in-process (can_fork)
    script = f"""
import numpy as np
from toolgym.trainers.demo import DemoConfig, make_env, can_fork, env_kwargs, warm_trajectories
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained({str(tiny_dir)!r})  # loading the model would start tqdm's monitor thread
cfg = DemoConfig(n_people=80)
worlds = [[make_env(cfg, env_kwargs(cfg, "train", world_seed=w)) for _ in range(4)] for w in (0, 1000, 1001)]
assert can_fork()
one, two = (warm_trajectories(tok, worlds, 24, (0.4, 0.35, 0.25), np.random.default_rng(3), 160, processes=p)
            for p in (1, 2))
assert one == two and len({{len(c) for _, c, _ in one}}) > 1  # several kinds of episode
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)


def _fake_run(arm, seed, ems, rl_s=100.0):
    algorithm, credit = {"ppo": ("ppo", "outcome")}.get(arm, ("grpo", arm))
    point = lambda step, em: {"step": step, "em": em, "f1": em, "return": em + 0.2, "tool_calls": 2.0,  # noqa: E731
                              "turns": 3.0, "episodes": 10}
    return {"config": {"algorithm": algorithm, "credit": credit, "seed": seed},
            "curve": [point(10 * k, em) for k, em in enumerate(ems)], "after": point(10 * (len(ems) - 1), ems[-1]),
            "after_greedy": point(0, 1.0), "naive_rag": {"em": 0.0, "return": 0.1, "tool_calls": 1.0},
            "timings": {"rl_s": rl_s}}


@pytest.mark.slow
def test_compare_credit_gathers_finished_runs_without_training(tmp_path):
    from toolgym.trainers.demo import compare_credit, credit_markdown

    curves = {("outcome", 0): [0.2, 0.5, 0.7], ("outcome", 1): [0.2, 0.6, 0.9],
              ("gigpo", 0): [0.2, 0.6, 0.8], ("gigpo", 1): [0.2, 0.8, 1.0]}
    for (arm, seed), ems in curves.items():
        (tmp_path / f"{arm}-s{seed}").mkdir()
        (tmp_path / f"{arm}-s{seed}" / "results.json").write_text(json.dumps(_fake_run(arm, seed, ems)))
    (tmp_path / "warm").mkdir()  # never loaded: every run is there already
    cfg = DemoConfig(output_dir=str(tmp_path), arms="outcome,gigpo", seeds=2, warm_model=str(tmp_path / "warm"))
    table = {r["arm"]: r for r in compare_credit(cfg, progress=False)["table"]}  # no warm start: all runs exist
    assert table["outcome"]["em"] == pytest.approx(0.8) and table["gigpo"]["em"] == pytest.approx(0.9)
    assert table["gigpo"]["em_per_seed"] == [0.8, 1.0] and table["outcome"]["em_curve"] == pytest.approx([0.2, 0.55, 0.8])
    assert table["outcome"]["steps_to_target"] == [None, 20] and table["gigpo"]["steps_to_target"] == [20, 10]
    lo, hi = table["outcome"]["em_ci"]  # Wilson interval of 16 right of 20
    assert lo == pytest.approx(0.584, abs=1e-3) and hi == pytest.approx(0.919, abs=1e-3)
    saved = json.loads((tmp_path / "credit.json").read_text())
    assert list(saved["curves"]) == ["outcome", "gigpo"] and (tmp_path / "credit.png").stat().st_size > 0
    assert (tmp_path / "credit.md").read_text() == credit_markdown(compare_credit(cfg, progress=False)["table"])
    assert "| gigpo | 2 | 0.90 (" in (tmp_path / "credit.md").read_text()


def test_demo_config_checks_credit_arms_and_templates():
    with pytest.raises(ValueError, match="Did you mean 'gigpo'"):
        DemoConfig(arms="outcome,gipgo")
    with pytest.raises(ValueError, match="Did you mean 'film_director_birth_country'"):
        DemoConfig(template="film_director_birth_contry")
    assert DemoConfig(credit="gigpo", template="film_director_birth_country").credit == "gigpo"


def test_scripted_plans_follow_the_question_hops():
    from types import SimpleNamespace

    from toolgym.trainers.demo import scripted_plan

    two = SimpleNamespace(supporting_titles=("Vines", "Beike"), answer="Retoufou")
    three = SimpleNamespace(supporting_titles=("Balith", "Datri", "Staban"), answer="Taitrain")
    assert scripted_plan("expert", two) == ["<search> Vines</search>", "<search> Beike</search>", "<answer> Retoufou</answer>"]
    assert scripted_plan("one_search", two) == ["<search> Vines</search>", "<answer> Beike</answer>"]
    assert scripted_plan("expert", three)[2:] == ["<search> Staban</search>", "<answer> Taitrain</answer>"]
    assert scripted_plan("one_search", three) == ["<search> Balith</search>", "<search> Datri</search>",
                                          "<answer> Staban</answer>"]  # one hop short: the city, not the country
    assert scripted_plan("immediate", three) == ["<answer> Balith</answer>"]


def test_grpo_steps_was_renamed_rl_steps(capsys):
    """The old name is an error naming the new one, from the CLI and from Python; it is no setting."""
    import dataclasses

    from toolgym.cli import main

    assert main(["demo", "grpo_steps=0"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "grpo_steps is now called rl_steps" in err, err
    assert "toolgym demo rl_steps=0" in err
    with pytest.raises(ValueError, match="grpo_steps is now called rl_steps"):
        DemoConfig(grpo_steps=5)
    cfg = dataclasses.replace(DemoConfig(rl_steps=7), seed=1)  # replace() still works with the old name gone
    assert cfg.rl_steps == 7 and "grpo_steps" not in dataclasses.asdict(cfg)
    assert main(["demo", "--help-config"]) == 0
    listed = capsys.readouterr().out
    assert "  rl_steps (default 60)" in listed and "grpo_steps" not in listed


def test_the_demo_package_imports_without_the_train_extra():
    """``import toolgym.trainers.demo`` (what ``toolgym demo --help-config`` needs) loads no torch,
    transformers, trl, peft or matplotlib: those come with the train extra, imported when used."""
    import subprocess
    import sys
    from pathlib import Path

    script = ("import sys\nimport toolgym.trainers.demo\n"
              "print(sorted({'torch', 'transformers', 'trl', 'peft', 'matplotlib'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                         text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]", out.stdout
