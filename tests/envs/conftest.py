"""``make_env(env_id)``: every registered id, constructed offline for the registry-wide tests.

Ids that load real data from the hub by default get the shared dev samples instead, and are
skipped, with the reason, where the samples are absent.
"""

from __future__ import annotations

import json

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
# Question/answer-only ids search a corpus the user gives: a few FlashRAG-style records and passages.
QA_ONLY = ("NQ-v0", "TriviaQA-v0", "PopQA-v0", "Bamboogle-v0")
QA_RECORDS = [
    {"id": "test_0", "question": "Who wrote the opera Tosca?", "golden_answers": ["Giacomo Puccini", "Puccini"],
     "metadata": {}},
    {"id": "test_1", "question": "In which city is the Mole Antonelliana?", "golden_answers": ["Turin"],
     "metadata": {}},
]
QA_CORPUS = [
    {"id": "1", "contents": '"Tosca"\nTosca is an opera in three acts by Giacomo Puccini.'},
    {"id": "2", "contents": '"Mole Antonelliana"\nThe Mole Antonelliana is a landmark building in Turin.'},
    {"id": "3", "contents": '"Turin"\nTurin is a city in Piedmont, in northern Italy.'},
]


@pytest.fixture(scope="session")
def qa_only_files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("qa-only")
    questions, corpus = folder / "test.jsonl", folder / "corpus.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in QA_RECORDS))
    corpus.write_text("".join(json.dumps(r) + "\n" for r in QA_CORPUS))
    return {"data_files": str(questions), "corpus": str(corpus)}


@pytest.fixture
def offline_kwargs(request):
    def kwargs_for(env_id: str) -> dict:
        if env_id in SAMPLES:
            return {"data_files": str(request.getfixturevalue("shared_data") / SAMPLES[env_id])}
        if env_id in QA_ONLY:
            return dict(request.getfixturevalue("qa_only_files"))
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
