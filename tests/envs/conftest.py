"""``make_env(env_id)``: every registered id, constructed offline for the registry-wide tests.

Ids that load real data from the hub by default get the shared dev samples instead, and are
skipped, with the reason, where the samples are absent.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

import toolgym  # noqa: F401 - registers the ids

SAMPLES = {
    "HotpotQA-v0": "hotpotqa_dev_distractor.sample.json",
    "TwoWikiMultihopQA-v0": "2wikimultihopqa_dev.sample.json",
    "MuSiQue-v0": "musique_ans_dev.sample.jsonl",
}
# Small worlds keep the suite fast; the default world is exercised in tests/envs/multihop_qa.
SMALL = {"MultiHopQA-v0": {"world": {"n_people": 60}}}


@pytest.fixture
def offline_kwargs(request):
    def kwargs_for(env_id: str) -> dict:
        if env_id in SAMPLES:
            return {"data_files": str(request.getfixturevalue("shared_data") / SAMPLES[env_id])}
        return dict(SMALL.get(env_id, {}))

    return kwargs_for


@pytest.fixture
def make_env(offline_kwargs):
    made = []

    def make(env_id: str, **kwargs):
        env = gym.make(env_id, **{**offline_kwargs(env_id), **kwargs})
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()
