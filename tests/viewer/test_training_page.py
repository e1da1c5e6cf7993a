"""``toolgym view`` of a training run: two GRPO steps of the tiny model, its records and its
logged metrics, shown in headless Chromium: curves over the steps, and an episode's tokens shaded
by advantage with the env's tokens marked as masked."""

from __future__ import annotations

import json
import re

import pytest

from tests.trainers.trainer_fakes import grpo_args, register_fakes
from toolgym.viewer.browser import MISSING, dump_dom, find_chromium
from toolgym.viewer.page import curves, training_log, write_page

pytest.importorskip("trl", reason="training needs the train extra")
register_fakes()


@pytest.fixture(scope="module")
def run_dir(tiny_dir, tmp_path_factory):
    from transformers import AutoTokenizer

    from toolgym.trainers.grpo import ToolGRPOTrainer
    from toolgym.trainers.tasks import EnvSpec

    out = tmp_path_factory.mktemp("run")
    trainer = ToolGRPOTrainer(str(tiny_dir), envs=[EnvSpec("FakeQA-v0")], args=grpo_args(out), credit="step",
                              max_turn_tokens=10, processing_class=AutoTokenizer.from_pretrained(tiny_dir),
                              num_tasks=64, log_episodes=3)
    trainer.train()
    trainer.save_state()  # as toolgym train does
    return out


@pytest.mark.slow
def test_training_records_hold_each_step(run_dir):
    records = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in records}) == [0, 1]
    assert all(len([r for r in records if r["step"] == s]) == 3 for s in (0, 1))


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason=MISSING)
def test_the_page_of_a_run_shows_curves_and_shaded_tokens(run_dir):
    page, n = write_page(run_dir)
    assert n == 6
    records = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    i = max(range(n), key=lambda k: len(records[k]["steps"]))
    dom = dump_dom(page, f"open={i}")
    shown = curves(training_log(run_dir), records)  # TRL's logged metrics that moved, then the stored episodes'
    assert "reward" in [c["name"] for c in shown] and "stored episodes: mean return" in [c["name"] for c in shown]
    assert 'id="curves-box" open=""' in dom and dom.count('class="curve"') == len(shown)
    for c in shown:
        assert f">{c['name']}<" in dom
    steps = records[i]["steps"]
    trained = sum(s["train"]["mask"].count("1") for s in steps)
    shaded = re.findall(r'<span class="tok" title="trained, advantage [^"]*" style="background: rgba\(', dom)
    assert len(shaded) == trained
    masked = [s["train"]["mask"].count("0") for s in steps if "0" in s["train"]["mask"]]
    for count in masked:
        assert f"+{count} env tokens, masked (not trained)" in dom
    for s in steps:
        assert f"advantage {s['train']['advantage']:.3f}" in dom
    assert dom.count(f"{records[i]['agent']} @{records[i]['step']}") >= 1
