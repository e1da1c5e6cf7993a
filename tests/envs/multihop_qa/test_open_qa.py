"""Question/answer-only sets: the three file layouts, the hub route, a QA-only episode over a
JSONL corpus, and the errors a bad data file or a misapplied argument gives."""

from __future__ import annotations

import bz2
import gzip
import json
import sys
import types

import gymnasium as gym
import pytest

import toolgym  # noqa: F401 - registers the ids
from toolgym.envs.multihop_qa import datasets as ds
from toolgym.envs.multihop_qa.datasets import DatasetFormatError, load_examples

FLASHRAG = [
    {"id": "test_0", "question": "Who was president of the United States in 1955?",
     "golden_answers": ["Dwight D. Eisenhower", "Eisenhower"], "metadata": {"pop": 120}},
    {"id": "test_1", "question": "Who wrote the opera Tosca?", "golden_answers": ["Giacomo Puccini"],
     "metadata": {}},
]
CORPUS = [
    {"id": "1", "contents": '"Tosca"\nTosca is an opera in three acts by Giacomo Puccini.'},
    {"id": "2", "contents": '"Dwight D. Eisenhower"\nEisenhower was president of the United States from 1953 to 1961.'},
    {"id": "3", "title": "Turin", "text": "Turin is a city in Piedmont, in northern Italy."},
]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def qa_files(tmp_path):
    return _jsonl(tmp_path / "test.jsonl", FLASHRAG), _jsonl(tmp_path / "corpus.jsonl", CORPUS)


# --------------------------------------------------------------------------- the three layouts


def test_flashrag_jsonl(qa_files):
    first, second = load_examples("nq", "test", data_files=qa_files[0])
    assert (first.id, first.question, first.answer, first.aliases) == (
        "test_0", FLASHRAG[0]["question"], "Dwight D. Eisenhower", ("Eisenhower",))
    assert first.supporting_titles == () and first.context == () and first.type == "qa"
    assert first.meta == {"metadata": {"pop": 120}, "dataset": "nq", "split": "test"}
    assert second.answers == ("Giacomo Puccini",)


def test_search_r1_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    prefix = ("Answer the given question. You must conduct reasoning inside <think> and </think> first ... "
              "For example, <answer> Beijing </answer>. Question: ")
    rows = [
        {"data_source": "bamboogle", "prompt": [{"role": "user", "content": prefix + "Who founded the Tosca theatre?\n"}],
         "ability": "fact-reasoning", "reward_model": {"style": "rule", "ground_truth": {"target": ["Ann Lee", "A. Lee"]}},
         "extra_info": {"split": "test", "index": 7}},
        {"data_source": "bamboogle", "prompt": [{"role": "user", "content": prefix + "When was Turin founded?"}],
         "ability": "fact-reasoning", "reward_model": {"style": "rule", "ground_truth": {"target": ["28 BC"]}},
         "extra_info": {"split": "test", "index": 8}},
    ]
    path = tmp_path / "test.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    a, b = load_examples("bamboogle", "test", data_files=path)
    assert (a.id, a.question, a.answer, a.aliases, a.meta["data_source"]) == (
        "7", "Who founded the Tosca theatre?", "Ann Lee", ("A. Lee",), "bamboogle")
    assert (b.id, b.question, b.answers) == ("8", "When was Turin founded?", ("28 BC",))


def test_plain_jsonl_with_answer_or_answers_and_id_or_idx(tmp_path):
    path = _jsonl(tmp_path / "bamboogle.jsonl", [
        {"idx": 0, "question": "Who was the first president of the country whose capital is Turin?", "answer": "x"},
        {"id": "b1", "question": "What year?", "answers": ["1861", "in 1861"]},
        {"question": "No id here?", "answer": "then the index"},
    ])
    examples = load_examples("qa", data_files=path)
    assert [(e.id, e.answers) for e in examples] == [
        ("0", ("x",)), ("b1", ("1861", "in 1861")), ("2", ("then the index",))]


def test_flashrag_copy_of_a_multihop_set_is_read_as_qa_only(tmp_path):
    """FlashRAG's HotpotQA has no supporting facts: the file reads as QA-only, not as an error."""
    path = _jsonl(tmp_path / "hotpotqa_dev.jsonl", [
        {"id": "5a8b57f25542995d1e6f1371", "question": "Were Scott Derrickson and Ed Wood of the same nationality?",
         "golden_answers": ["yes"], "metadata": {"type": "comparison", "level": "hard"}}])
    (example,) = load_examples("hotpotqa", data_files=path)
    assert example.answer == "yes" and example.supporting_titles == ()


def test_records_rewritten_with_empty_evidence_are_qa_only(tmp_path):
    """Bamboogle written as HotpotQA/MuSiQue records with empty evidence: QA-only, not an error."""
    hotpot = _jsonl(tmp_path / "h.jsonl", [{"_id": "b0", "question": "Who?", "answer": "Ann",
                                            "supporting_facts": [], "context": []}])
    musique = _jsonl(tmp_path / "m.jsonl", [{"id": "b0", "question": "Who?", "answer": "Ann", "answer_aliases": ["A."],
                                             "paragraphs": []}])
    (a,) = load_examples("hotpotqa", data_files=hotpot)
    (b,) = load_examples("musique", data_files=musique)
    assert (a.id, a.answers, a.supporting_titles) == ("b0", ("Ann",), ())
    assert b.answers == ("Ann", "A.") and b.context == ()


def test_compressed_qa_files(tmp_path):
    text = "".join(json.dumps(r) + "\n" for r in FLASHRAG)
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "a.jsonl.bz2").write_bytes(bz2.compress(text.encode()))
    assert load_examples("triviaqa", data_files=tmp_path / "a.jsonl.gz") == load_examples(
        "triviaqa", data_files=tmp_path / "a.jsonl.bz2")


@pytest.mark.parametrize("record, message", [
    ({"id": "1", "question": "q", "golden_answers": []}, r"field 'golden_answers' should be a non-empty list"),
    ({"id": "1", "question": "q", "golden_answers": [["nested"]]}, r"field 'golden_answers' should be a non-empty list"),
    ({"prompt": [{"role": "user", "content": "Question: q"}], "reward_model": {"style": "rule"}},
     r"'reward_model\.ground_truth\.target' is missing"),
    ({"id": "1", "question": "   ", "answer": "a"}, r"field 'question' is empty"),
    ({"id": "1", "query": "q", "output": "a"}, r"not a question/answer record.*present: id, output, query"),
])
def test_bad_qa_records_name_the_file_record_and_field(tmp_path, record, message):
    path = _jsonl(tmp_path / "bad.jsonl", [FLASHRAG[0], record])
    with pytest.raises(DatasetFormatError, match=r"bad\.jsonl: record 1.*" + message):
        load_examples("popqa", data_files=path)


def test_an_evidence_file_given_as_an_open_domain_set_gets_a_hint(shared_data):
    with pytest.raises(DatasetFormatError, match=r"not a question/answer record.*looks like HotpotQA"):
        load_examples("nq", data_files=shared_data / "hotpotqa_dev_distractor.sample.json")


# --------------------------------------------------------------------------- the hub route


@pytest.mark.parametrize("name, split, hub_split", [
    ("nq", "test", "test"), ("triviaqa", "dev", "dev"), ("popqa", "test", "test"), ("bamboogle", "test", "test")])
def test_open_domain_sets_load_flashrag_copies_from_the_hub(monkeypatch, name, split, hub_split):
    calls = []

    def load_dataset(path, config=None, *, split):
        calls.append((path, config, split))
        return FLASHRAG

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    examples = load_examples(name, split)
    assert calls == [("RUC-NLPIR/FlashRAG_datasets", name, hub_split)]
    assert [e.answer for e in examples] == ["Dwight D. Eisenhower", "Giacomo Puccini"]


def test_hub_splits_that_do_not_exist_and_sets_without_a_hub_copy():
    with pytest.raises(ValueError, match=r"PopQA on the hub .* no labelled 'train' split; available: test"):
        load_examples("popqa", "train")
    with pytest.raises(ValueError, match=r"dataset='qa' has no hub copy: pass data_files="):
        load_examples("qa", "test")


# --------------------------------------------------------------------------- the env


def test_qa_only_episode_over_a_jsonl_corpus(qa_files):
    """Searches run over the user's corpus, the answer is scored, no evidence term appears."""
    questions, corpus = qa_files
    env = gym.make("NQ-v0", data_files=str(questions), corpus=str(corpus))
    obs, info = env.reset(seed=0, options={"index": 1})
    assert "Tosca" in obs[-1]["content"] and info["evidence_recall"] is None
    obs, reward, terminated, truncated, info = env.step(env.unwrapped.call("search", query="opera Tosca"))
    assert 'Doc 1 (Title: "Tosca") Tosca is an opera' in obs[-1]["content"]
    assert "evidence" not in info["reward_terms"] and info["found_supporting"] == []
    assert info["evidence_recall"] is None and not terminated
    obs, reward, terminated, truncated, info = env.step(env.unwrapped.call("answer", answer="Puccini"))
    assert terminated and not truncated
    assert info["result"]["extras"]["qa"]["em"] == 0.0 and info["result"]["extras"]["qa"]["f1"] == pytest.approx(2 / 3) and info["result"]["extras"]["qa"]["subem"] == 0.0
    assert info["reward_terms"]["answer"] == pytest.approx(2 / 3) and "evidence" not in info["reward_terms"]
    env.reset(seed=0, options={"index": 0})  # an alias scores in full
    *_, info = env.step(env.unwrapped.call("answer", answer="Eisenhower"))
    assert info["result"]["extras"]["qa"]["em"] == 1.0
    env.close()


def test_qa_only_oracle_searches_the_question_and_answers(qa_files):
    env = gym.make("Bamboogle-v0", data_files=str(qa_files[0]), corpus=str(qa_files[1]), format="tags")
    env.reset(seed=0, options={"index": 0})
    assert env.unwrapped.oracle_action() == f"<search>{FLASHRAG[0]['question']}</search>"
    env.step(env.unwrapped.oracle_action())
    *_, terminated, _, info = env.step(env.unwrapped.oracle_action())
    assert terminated and info["result"]["extras"]["qa"]["em"] == 1.0
    env.close()


def test_qa_only_set_without_a_corpus_says_how_to_give_one(qa_files):
    for corpus in (None, "pooled", "example"):
        kwargs = {} if corpus is None else {"corpus": corpus}
        with pytest.raises(ValueError, match=r"'nq' records carry no passages.*corpus= a JSONL corpus.*retriever='http'"):
            gym.make("NQ-v0", data_files=str(qa_files[0]), **kwargs)


def test_multihop_env_over_an_external_corpus_reports_recall_by_title(shared_data, tmp_path):
    """HotpotQA over a user's JSONL corpus: evidence is matched by title and recall is reported."""
    from toolgym.envs.multihop_qa.corpus import pooled_corpus

    path = shared_data / "hotpotqa_dev_distractor.sample.json"
    examples = load_examples("hotpotqa", data_files=path, limit=3)
    corpus = _jsonl(tmp_path / "c.jsonl", [{"id": p.id, "title": p.title, "text": p.text} for p in pooled_corpus(examples)])
    env = gym.make("HotpotQA-v0", data_files=str(path), limit=3, corpus=str(corpus))
    env.reset(seed=0, options={"index": 0})
    gold = env.unwrapped.example.supporting_titles
    *_, info = env.step(env.unwrapped.call("search", query=gold[0]))
    assert info["evidence_recall"] == pytest.approx(1 / len(gold)) and info["reward_terms"]["evidence"] > 0
    env.close()


def test_musique_evidence_recall_counts_paragraphs_not_pages(shared_data):
    """Two gold paragraphs of one page: finding one is half the evidence, as the env rewards it."""
    examples = load_examples("musique", data_files=shared_data / "musique_ans_dev.sample.jsonl")
    index, example = next(
        (i, e) for i, e in enumerate(examples)
        if len({p.title for p in e.context if p.id in {f"{e.id}-{j}" for j in e.supporting_idxs}}) < len(e.supporting_idxs)
    )
    env = gym.make("MuSiQue-v0", data_files=str(shared_data / "musique_ans_dev.sample.jsonl"), corpus="example",
                   top_k=1)
    env.reset(seed=0, options={"index": index})
    gold = [p for p in example.context if p.id in {f"{example.id}-{j}" for j in example.supporting_idxs}]
    *_, info = env.step(env.unwrapped.call("search", query=gold[0].text))
    assert info["found_supporting"] == [gold[0].title]
    assert info["evidence_recall"] == pytest.approx(1 / len(example.supporting_idxs))
    assert info["retrieved_context"] == [example.context.index(gold[0])]
    env.close()


# --------------------------------------------------------------------------- bad data files


def _bad_file(tmp_path, name: str, rows=FLASHRAG) -> tuple:
    good = "".join(json.dumps(r) + "\n" for r in rows[:2])
    path = tmp_path / name
    if name == "latin1.jsonl":
        path.write_bytes(good.encode() + json.dumps({"id": "x", "question": "Caf\u00e9?", "answer": "a"}).encode("latin-1").replace(b"\\u00e9", b"\xe9"))
        return path, r"latin1\.jsonl: not UTF-8 text \(byte b'\\xe9' on line 3\).*re-save it as UTF-8"
    if name == "binary.jsonl":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
        return path, r"binary\.jsonl: not UTF-8 text .*binary or compressed file"
    if name == "fake.jsonl.gz":
        path.write_text(good)
        return path, r"fake\.jsonl\.gz: cannot decompress from its start: it is not a valid gz archive.*rename it without the \.gz suffix"
    if name == "cut.jsonl.gz":
        path.write_bytes(gzip.compress(good.encode())[:-12])
        return path, r"cut\.jsonl\.gz: cannot decompress .*it is truncated\. Download it again"
    if name == "huge.jsonl":
        path.write_text(good + '{"id": 1' + "0" * 4400 + ', "question": "q", "answer": "a"}\n')
        return path, r"huge\.jsonl: line 3 \(record 2\) cannot be read: Exceeds the limit \(4300 digits\).*fix or remove"
    if name == "huge.json":
        path.write_text("[" + json.dumps(FLASHRAG[0]) + ', {"id": 1' + "0" * 4400 + "}]")
        return path, r"huge\.json: record 1 cannot be read: Exceeds the limit \(4300 digits\)"
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["latin1.jsonl", "binary.jsonl", "fake.jsonl.gz", "cut.jsonl.gz", "huge.jsonl", "huge.json"])
def test_bad_data_files_give_one_error_naming_the_file(tmp_path, name):
    path, message = _bad_file(tmp_path, name)
    with pytest.raises(DatasetFormatError, match=message):
        load_examples("nq", data_files=path)


def test_a_fake_parquet_file_names_itself(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "test.parquet"
    path.write_text("not parquet")
    with pytest.raises(DatasetFormatError, match=r"test\.parquet: not a readable parquet file"):
        load_examples("nq", data_files=path)


@pytest.mark.parametrize("data_files, message", [
    (42, r"data_files=42 is a int: pass a path or a list of paths"),
    ({"test": "a.jsonl"}, r"data_files=\{'test': 'a\.jsonl'\} is a dict: pass a path"),
    (["ok.jsonl", 3.5], r"data_files entries must be paths, got float 3\.5"),
])
def test_data_files_of_the_wrong_type(data_files, message):
    with pytest.raises(DatasetFormatError, match=message):
        load_examples("nq", data_files=data_files)
    with pytest.raises(DatasetFormatError, match=message):
        gym.make("NQ-v0", data_files=data_files, corpus="x.jsonl")


def test_registered_open_domain_ids():
    assert {ds.canonical_dataset(n) for n in ("NQ", "natural_questions", "TriviaQA", "pop_qa", "Bamboogle")} == {
        "nq", "triviaqa", "popqa", "bamboogle"}
    for env_id, dataset in (("NQ-v0", "nq"), ("TriviaQA-v0", "triviaqa"), ("PopQA-v0", "popqa"),
                            ("Bamboogle-v0", "bamboogle")):
        assert gym.spec(env_id).kwargs == {"dataset": dataset, "split": "test"}


@pytest.mark.parametrize("name", ["latin1.jsonl", "binary.jsonl", "fake.jsonl.gz", "cut.jsonl.gz", "huge.jsonl"])
def test_bad_corpus_files_give_one_error_naming_the_file(tmp_path, name):
    from toolgym.envs.multihop_qa.corpus import load_corpus_jsonl

    path, message = _bad_file(tmp_path, name, rows=CORPUS)
    message = message.split(":")[0] + ":"  # the file named, whatever the reader's position wording
    with pytest.raises(DatasetFormatError, match=message) as caught:
        load_corpus_jsonl(path)
    assert any(fix in str(caught.value) for fix in ("re-save it as UTF-8", "Download it again", "fix or remove"))


def test_qa_only_set_over_a_retrieval_server_needs_no_local_corpus(qa_files):
    """retriever='http' without corpus=: the server holds the corpus (Search-R1's setup)."""
    from toolgym.envs.retrieval.base import Passage
    from toolgym.envs.retrieval.bm25 import BM25Retriever
    from toolgym.envs.retrieval.server import RetrievalServer

    passages = [Passage(str(i), title, text) for i, (title, text) in enumerate([
        ("Tosca", "Tosca is an opera in three acts by Giacomo Puccini."),
        ("Turin", "Turin is a city in Piedmont, in northern Italy."),
        ("Violin", "The violin is a wooden string instrument played with a bow.")])]
    server = RetrievalServer(BM25Retriever(passages), port=0)
    server.start_in_thread()
    try:
        env = gym.make("TriviaQA-v0", data_files=str(qa_files[0]), retriever="http",
                       retriever_options={"url": server.url, "timeout": 5.0})
        assert env.unwrapped.corpus_mode == "remote"
        env.reset(seed=0, options={"index": 1})
        obs, _, _, _, info = env.step(env.unwrapped.call("search", query="opera by Puccini"))
        assert 'Doc 1 (Title: "Tosca")' in obs[-1]["content"] and info["evidence_recall"] is None
        *_, terminated, _, info = env.step(env.unwrapped.call("answer", answer="Giacomo Puccini"))
        assert terminated and info["result"]["extras"]["qa"]["em"] == 1.0 and "evidence" not in info["reward_terms"]
        env.close()
    finally:
        server.close()
    with pytest.raises(ValueError, match="corpus='remote' means a retrieval server: pass retriever='http'"):
        gym.make("TriviaQA-v0", data_files=str(qa_files[0]), corpus="remote")
