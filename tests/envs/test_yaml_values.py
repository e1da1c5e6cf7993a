"""Config values and overrides read YAML 1.2 numbers: ``1e-3`` is a float, not the string PyYAML gives."""

from __future__ import annotations

import pytest

from toolgym.envs.cli import parse_overrides
from toolgym.envs.yaml_values import load_yaml


@pytest.mark.parametrize(("text", "value"), [
    ("1e-3", 0.001), ("5E4", 50000.0), ("-2e+2", -200.0), ("1.5e-5", 1.5e-5), ("3", 3), ("0.5", 0.5),
    ("1e", "1e"), ("e5", "e5"), ("'1e-3'", "1e-3"), ("true", True), ("{a: 1e-2}", {"a": 0.01}),
])
def test_numbers_as_yaml_1_2_reads_them(text, value):
    got = load_yaml(text)
    assert got == value and type(got) is type(value)


def test_overrides_and_train_config_read_exponents_as_floats(tmp_path):
    assert parse_overrides(["tolerance=1e-3", "world={n_people: 50}"]) == {"tolerance": 0.001, "world": {"n_people": 50}}
    pytest.importorskip("trl")
    from toolgym.trainers.config import TrainConfig

    path = tmp_path / "c.yaml"
    path.write_text("model: some/model\nenvs: [{id: MultiHopQA-v0}]\ngrpo:\n  learning_rate: 1e-5\n")
    config = TrainConfig.from_yaml(path, ["grpo.beta=4e-2"])
    assert config.grpo["learning_rate"] == 1e-5 and config.grpo["beta"] == 0.04
