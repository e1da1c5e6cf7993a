"""The algorithm and credit names, defined once, and the settings of each algorithm."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from toolgym.trainers.algorithms import AlgorithmSettings, GRPOSettings, PPOSettings, settings_for
from toolgym.trainers.config import TrainConfig
from toolgym.trainers.names import ALGORITHMS, CREDITS, ESTIMATOR_NAMES

REPO = Path(__file__).resolve().parents[2]
DEMO_CPU = REPO / "configs" / "demo_cpu.yaml"
UNKNOWN_CREDIT = "credit must be one of outcome, step, gigpo; got 'stp'. Did you mean 'step'?"


def _toolgym_train(capsys, tmp_path, *overrides) -> str:
    from toolgym.cli import main

    assert main(["train", "--config", str(DEMO_CPU), f"model={tmp_path}", *overrides]) == 2
    return capsys.readouterr().err.strip()


def _step_advantages(**kw):
    from toolgym.trainers.advantages import step_advantages

    return step_advantages([[1.0]], 1, **kw)


def _grpo_trainer(**kw):
    from toolgym.trainers.grpo import ToolGRPOTrainer

    return ToolGRPOTrainer(None, envs=[], args=None, **kw)  # the settings are checked first


@pytest.mark.parametrize("reject", [
    lambda: GRPOSettings(credit="stp"),
    lambda: PPOSettings(algorithm="rloo", credit="stp"),
    lambda: settings_for("reinforce_pp", credit="stp"),
    lambda: TrainConfig.from_yaml(DEMO_CPU, ["credit=stp"]),
    lambda: TrainConfig.from_yaml(DEMO_CPU, ["algorithm=ppo", "credit=stp"]),
    lambda: _step_advantages(credit="stp"),
    lambda: _grpo_trainer(credit="stp"),
], ids=["GRPOSettings", "PPOSettings", "settings_for", "config", "config-ppo", "advantages", "ToolGRPOTrainer"])
def test_every_path_rejects_an_unknown_credit_with_the_same_message(reject):
    with pytest.raises(ValueError) as err:
        reject()
    assert str(err.value) == UNKNOWN_CREDIT


def test_the_train_command_rejects_an_unknown_credit_with_the_same_message(capsys, tmp_path):
    assert _toolgym_train(capsys, tmp_path, "credit=stp") == f"toolgym train: {UNKNOWN_CREDIT}"


def test_the_names_are_defined_once():
    from toolgym.trainers import advantages, cli

    assert tuple(advantages.ESTIMATORS) == ESTIMATOR_NAMES
    assert advantages.CREDITS is CREDITS and advantages.ESTIMATOR_NAMES is ESTIMATOR_NAMES
    assert cli.CREDITS is CREDITS and cli.ALGORITHMS is ALGORITHMS
    assert set(ALGORITHMS) == {"ppo", *ESTIMATOR_NAMES}


def test_each_algorithm_has_one_settings_class_and_one_trainer():
    assert type(settings_for("grpo")) is GRPOSettings
    for algorithm in ALGORITHMS:
        settings = settings_for(algorithm, credit="gigpo")
        assert settings.algorithm == algorithm and settings.credit == "gigpo"
        assert isinstance(settings, PPOSettings) == (algorithm != "grpo")  # grpo is ToolGRPOTrainer, never PPO's
    cfg = TrainConfig.from_yaml(DEMO_CPU, ["algorithm=rloo", "credit=step", "gamma=0.9", "ppo.lam=0.5"])
    assert cfg.settings() == PPOSettings(algorithm="rloo", credit="step", gamma=0.9, lam=0.5)
    assert TrainConfig.from_yaml(DEMO_CPU, ["credit=gigpo"]).settings() == GRPOSettings(credit="gigpo")


def test_the_shared_settings_have_their_help_once():
    shared = {f.name: f for f in dataclasses.fields(AlgorithmSettings)}
    config = {f.name: f for f in dataclasses.fields(TrainConfig)}
    ppo = {f.name: f for f in dataclasses.fields(PPOSettings)}
    for name, f in shared.items():
        assert config[name].metadata["help"] is f.metadata["help"] and config[name].default == f.default, name
        assert ppo[name].metadata["help"] is f.metadata["help"], name
    assert PPOSettings().credit == "step" and GRPOSettings().credit == "outcome"  # defaults as before


@pytest.mark.parametrize("make,message", [
    (lambda: GRPOSettings(gamma=0), r"gamma must be in \(0, 1\], got 0; 1.0 is usual"),
    (lambda: GRPOSettings(step_weight=-1), "step_weight must be a number >= 0, got -1; GiGPO's default is 1.0"),
    (lambda: GRPOSettings(step_similarity="exakt"), "step_similarity must be one of exact; got 'exakt'. "
                                                    "Did you mean 'exact'"),
    (lambda: PPOSettings(gae_level="tokens"), "ppo.gae_level must be one of token, step; got 'tokens'. "
                                              "Did you mean 'token'"),
    (lambda: PPOSettings(kl_penalty="kl"), "ppo.kl_penalty must be one of loss, reward; got 'kl'"),
    (lambda: settings_for("grop"), "algorithm must be one of ppo, grpo, .*; got 'grop'. Did you mean 'grpo'"),
])
def test_settings_errors_name_the_value_and_the_fix(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize("overrides,message", [
    (["algorithm=ppo", "grpo.epsilon=0.3"], r"grpo.epsilon is not read with algorithm 'ppo': .*ppo.cliprange"),
    (["algorithm=ppo", "grpo.loss_type=dr_grpo"], "grpo.loss_type is not read with algorithm 'ppo'"),
    (["grpo.max_tool_calling_iterations=3"], r"not read with algorithm 'grpo': .*envs\[\].kwargs.max_turns"),
    (["algorithm=rloo", "grpo.chat_template_kwargs={enable_thinking: true}"], "use the top-level chat_template_kwargs"),
    (["ppo.vf_coef=0.5"], "ppo: vf_coef is read by algorithms ppo, rloo, .* not grpo: set algorithm"),
    (["algorithm=ppo", "ppo.gamma=0.9"], "Unknown config key 'ppo.gamma': gamma is a top-level key, shared by every "
                                         "algorithm; write gamma=0.9"),
])
def test_config_refuses_settings_its_algorithm_does_not_read(overrides, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_yaml(DEMO_CPU, overrides)


def test_trl_fields_an_algorithm_reads_pass_through():
    for algorithm in ESTIMATOR_NAMES:  # TRL's GRPO loss: its clip and loss settings apply
        cfg = TrainConfig.from_yaml(DEMO_CPU, [f"algorithm={algorithm}", "grpo.epsilon=0.3", "grpo.loss_type=dr_grpo"])
        assert cfg.grpo["epsilon"] == 0.3
    assert TrainConfig.from_yaml(DEMO_CPU, ["algorithm=ppo", "grpo.beta=0.1"]).grpo["beta"] == 0.1  # PPO's KL


def test_settings_and_tasks_validate_without_torch_or_trl():
    code = ("import sys; import toolgym.trainers.algorithms, toolgym.trainers.tasks, toolgym.trainers.cli; "
            "from toolgym.trainers.tasks import EnvSpec; EnvSpec('MultiHopQA-v0', {'format': 'tags'}); "
            "from toolgym.trainers.algorithms import settings_for; settings_for('ppo', lam=0.9); "
            "print(sorted(m for m in ('torch', 'trl', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stderr
