"""Loaders of the real datasets, on the official dev samples in shared/data and on broken copies."""

from __future__ import annotations

import gzip
import json
import sys
import types

import gymnasium as gym
import pytest

from toolgym.envs import records
from toolgym.envs.multihop_qa import datasets as ds
from toolgym.envs.multihop_qa.datasets import (
    DatasetFormatError,
    DatasetLoadError,
    canonical_dataset,
    canonical_split,
    load_examples,
)
from toolgym.envs.multihop_qa.metrics import exact_match

FILES = {
    "hotpotqa": ("hotpotqa_dev_distractor.sample.json", 213),
    "2wikimultihopqa": ("2wikimultihopqa_dev.sample.json", 76),
    "musique": ("musique_ans_dev.sample.jsonl", 113),
}


def _load(shared_data, name, **kwargs):
    return load_examples(name, "dev", data_files=shared_data / FILES[name][0], **kwargs)


def _raw(shared_data, name):
    path = shared_data / FILES[name][0]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- real samples


@pytest.mark.parametrize("name", list(FILES))
def test_counts_and_gold_evidence_in_context(shared_data, name):
    examples = _load(shared_data, name)
    assert len(examples) == FILES[name][1]
    assert len({e.id for e in examples}) == len(examples)
    for e in examples:
        assert e.question.strip() and e.answer.strip()
        assert len(e.supporting_titles) >= 2, e.id
        titles = {p.title for p in e.context}
        assert set(e.supporting_titles) <= titles, e.id
        assert len({p.id for p in e.context}) == len(e.context)
        assert all(p.id.startswith(f"{e.id}-") and p.text for p in e.context)
        assert e.hops >= 2
        assert e.meta["dataset"] == name and e.meta["split"] == "validation"


def test_hotpotqa_normalisation(shared_data):
    raw = _raw(shared_data, "hotpotqa")[0]
    e = _load(shared_data, "hotpotqa", limit=1)[0]
    assert e.id == raw["_id"] and e.type == "comparison" and e.meta["level"] == "hard"
    # hop order = order of first appearance in supporting_facts
    assert e.supporting_titles == ("Scott Derrickson", "Ed Wood")
    assert e.supporting_facts == tuple((t, s) for t, s in raw["supporting_facts"])
    assert [p.title for p in e.context] == [t for t, _ in raw["context"]]
    assert e.context[0].id == f"{e.id}-0"
    # sentences keep their leading space in HotpotQA: joined with exactly one space
    assert e.context[0].text == " ".join(s.strip() for s in raw["context"][0][1])
    assert "  " not in e.context[0].text


def test_2wiki_keeps_evidences_and_four_hop_types(shared_data):
    examples = _load(shared_data, "2wikimultihopqa")
    first = examples[0]
    assert first.type == "bridge_comparison" and first.hops == 4
    assert first.supporting_titles == ("Payment on Demand", "My Cousin from Warsaw", "Curtis Bernhardt", "Carl Boese")
    assert first.meta["evidences"][0] == ["Payment on Demand", "director", "Curtis Bernhardt"]
    assert {e.type for e in examples} == {"bridge_comparison", "comparison", "compositional", "inference"}


def test_musique_hop_order_aliases_and_hops(shared_data):
    raws = {r["id"]: r for r in _raw(shared_data, "musique")}
    examples = _load(shared_data, "musique")
    for e in examples:
        raw = raws[e.id]
        assert e.supporting_idxs == tuple(d["paragraph_support_idx"] for d in raw["question_decomposition"])
        assert sorted(e.supporting_idxs) == sorted(p["idx"] for p in raw["paragraphs"] if p["is_supporting"])
        assert e.hops == int(e.id[0]) == len(raw["question_decomposition"])
        assert e.aliases == tuple(a for a in dict.fromkeys(raw["answer_aliases"]) if a != raw["answer"])
    first = examples[0]
    assert first.supporting_titles == ("Van Hook Township, Mountrail County, North Dakota", "Mountrail County Courthouse")
    assert first.type == "2hop"
    with_aliases = [e for e in examples if e.aliases]
    assert len(with_aliases) == 33
    e = with_aliases[0]
    assert exact_match(e.aliases[0], e.answers) == 1.0  # an alias alone scores full EM


def test_musique_repeated_supporting_titles_are_kept_per_hop(shared_data):
    e = next(x for x in _load(shared_data, "musique") if x.id == "2hop__13574_13498")
    assert e.supporting_titles == ("FC Barcelona", "FC Barcelona") and len(e.supporting_idxs) == 2


def test_limit_and_aliases_of_names(shared_data):
    assert len(load_examples("HotpotQA", "validation", data_files=shared_data / FILES["hotpotqa"][0], limit=5)) == 5
    assert load_examples("2wiki", data_files=[shared_data / FILES["2wikimultihopqa"][0]], limit=0) == []
    both = load_examples(
        "hotpot_qa", "test", data_files=[shared_data / FILES["hotpotqa"][0], shared_data / FILES["2wikimultihopqa"][0]]
    )
    assert len(both) == 213 + 76 and both[0].meta["split"] == "test"  # with data_files the split is a label
    with pytest.raises(ValueError, match="limit"):
        _load(shared_data, "musique", limit=-1)


def test_small_read_chunks_give_the_same_examples(shared_data, monkeypatch):
    expected = {name: _load(shared_data, name) for name in FILES}
    monkeypatch.setattr(records, "_CHUNK", 97)  # many refills mid-record, mid-string, mid-line
    for name in FILES:
        assert _load(shared_data, name) == expected[name]


def test_gzip_files(shared_data, tmp_path):
    path = tmp_path / "dev.jsonl.gz"
    path.write_bytes(gzip.compress((shared_data / FILES["musique"][0]).read_bytes()))
    assert _load(shared_data, "musique") == load_examples("musique", data_files=path)


def test_musique_unanswerable_records_are_skipped_with_a_warning(shared_data, tmp_path):
    raws = _raw(shared_data, "musique")[:3]
    raws[1] = {**raws[1], "answerable": False}
    path = tmp_path / "full.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in raws))
    with pytest.warns(UserWarning, match="skipped 1 unanswerable"):
        assert [e.id for e in load_examples("musique", data_files=path)] == [raws[0]["id"], raws[2]["id"]]


# --------------------------------------------------------------------------- hub route (mocked)


def _hub_shape(record):
    """The layout of hotpotqa/hotpot_qa and framolfese/2WikiMultihopQA: id, columns as dicts."""
    out = {k: v for k, v in record.items() if k not in ("_id", "context", "supporting_facts")}
    out["id"] = record["_id"]
    out["context"] = {"title": [t for t, _ in record["context"]], "sentences": [s for _, s in record["context"]]}
    out["supporting_facts"] = {
        "title": [t for t, _ in record["supporting_facts"]],
        "sent_id": [s for _, s in record["supporting_facts"]],
    }
    return out


@pytest.mark.parametrize("name", list(FILES))
def test_hub_records_normalise_like_the_official_files(shared_data, monkeypatch, name):
    calls = []
    raws = _raw(shared_data, name)
    hub_rows = raws if name == "musique" else [_hub_shape(r) for r in raws]

    def load_dataset(path, config=None, *, split):
        calls.append((path, config, split))
        return hub_rows

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    from_hub = load_examples(name, "dev")
    assert from_hub == _load(shared_data, name)
    spec = ds.DATASETS[name]
    assert calls == [(spec.hub_id, spec.hub_config, "validation")]


def test_hub_ids_are_the_documented_ones():
    assert (ds.HOTPOTQA_HUB_ID, ds.HOTPOTQA_HUB_CONFIG) == ("hotpotqa/hotpot_qa", "distractor")
    assert ds.TWOWIKI_HUB_ID == "framolfese/2WikiMultihopQA"
    assert ds.MUSIQUE_HUB_ID == "dgslibisey/MuSiQue"


def test_hub_without_a_labelled_test_split():
    with pytest.raises(ValueError, match=r"no labelled 'test' split.*train, validation.*data_files"):
        load_examples("musique", "test")


def test_hub_unreachable_points_to_the_official_files(monkeypatch):
    def load_dataset(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'hotpotqa/hotpot_qa' on the Hub")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with pytest.raises(DatasetLoadError, match=r"hotpotqa/hotpot_qa\[distractor\] split 'train'.*ConnectionError.*"
                                               r"set HF_HUB_OFFLINE=1 to use the cached copy.*"
                                               r"hotpot_dev_distractor_v1\.json.*data_files="):
        load_examples("hotpotqa", "train")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match=r"HF_HUB_OFFLINE is set.*unset it to download"):
        load_examples("hotpotqa", "train")


def test_hub_without_the_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match="pip install"):
        load_examples("hotpotqa", "train")


# --------------------------------------------------------------------------- names and splits


def test_dataset_names_and_suggestions():
    assert canonical_dataset("twowikimultihopqa") == canonical_dataset("2Wiki") == "2wikimultihopqa"
    assert canonical_dataset("hotpot_qa") == "hotpotqa" and canonical_dataset("MuSiQue") == "musique"
    with pytest.raises(ValueError, match=r"Unknown dataset 'musiqe'\. Did you mean 'musique'\?.*hotpotqa"):
        load_examples("musiqe")


def test_split_names():
    assert canonical_split("dev") == canonical_split("Validation") == "validation"
    with pytest.raises(ValueError, match=r"Unknown split 'trian'\. Did you mean 'train'\?"):
        load_examples("hotpotqa", "trian")


# --------------------------------------------------------------------------- broken files


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_truncated_json_list_names_file_and_record(shared_data, tmp_path):
    text = (shared_data / FILES["hotpotqa"][0]).read_text()
    path = _write(tmp_path, "cut.json", text[: len(text) // 2])
    with pytest.raises(DatasetFormatError, match=r"cut\.json: record \d+ is not valid JSON.*truncated"):
        load_examples("hotpotqa", data_files=path)
    # cut between records: the list never closes
    raws = _raw(shared_data, "2wikimultihopqa")[:2]
    path = _write(tmp_path, "open.json", "[" + json.dumps(raws[0]) + ",\n" + json.dumps(raws[1]) + "\n")
    with pytest.raises(DatasetFormatError, match=r"open\.json: the file ends inside the JSON list after record 1.*truncated"):
        load_examples("2wiki", data_files=path)


def test_invalid_json_in_the_middle_is_not_called_truncated(shared_data, tmp_path):
    raws = _raw(shared_data, "hotpotqa")[:3]
    text = "[" + ",\n".join(json.dumps(r) for r in raws) + "]"
    second = text.index(raws[1]["_id"])
    path = _write(tmp_path, "bad.json", text[:second] + "\x00oops" + text[second:])
    with pytest.raises(DatasetFormatError, match=r"bad\.json: record 1 is not valid JSON.*line 2") as err:
        load_examples("hotpotqa", data_files=path)
    assert "truncated" not in str(err.value)


def test_truncated_jsonl_names_the_line(shared_data, tmp_path):
    text = (shared_data / FILES["musique"][0]).read_text()
    path = _write(tmp_path, "cut.jsonl", text[: len(text) - 500])
    with pytest.raises(DatasetFormatError, match=r"cut\.jsonl: line 113 \(record 112\) is not valid JSON.*truncated"):
        load_examples("musique", data_files=path)


def test_missing_field_names_file_record_id_and_field(shared_data, tmp_path):
    raws = _raw(shared_data, "hotpotqa")[:5]
    del raws[3]["answer"]
    path = _write(tmp_path, "dev.json", json.dumps(raws))
    with pytest.raises(
        DatasetFormatError, match=rf"dev\.json: record 3 \(id '{raws[3]['_id']}'\): missing field 'answer'"
    ):
        load_examples("hotpotqa", data_files=path)


def test_missing_musique_field(shared_data, tmp_path):
    raws = _raw(shared_data, "musique")[:3]
    del raws[2]["paragraphs"]
    path = _write(tmp_path, "m.jsonl", "\n".join(json.dumps(r) for r in raws))
    with pytest.raises(DatasetFormatError, match=rf"m\.jsonl: record 2 \(id '{raws[2]['id']}'\): missing field 'paragraphs'"):
        load_examples("musique", data_files=path)


def test_mistyped_nested_field(shared_data, tmp_path):
    raws = _raw(shared_data, "2wikimultihopqa")[:2]
    raws[1]["context"][4] = ["Only a title"]
    path = _write(tmp_path, "w.json", json.dumps(raws))
    with pytest.raises(DatasetFormatError, match=r"w\.json: record 1 \(id '\w+'\): field 'context\[4\]' should be a \[title, sentences\] pair"):
        load_examples("2wiki", data_files=path)
    raws = _raw(shared_data, "musique")[:1]
    raws[0]["paragraphs"][5]["paragraph_text"] = None
    path = _write(tmp_path, "m.jsonl", json.dumps(raws[0]))
    with pytest.raises(DatasetFormatError, match=r"record 0 .*'paragraphs\[5\]\.paragraph_text' is missing or not a string"):
        load_examples("musique", data_files=path)


def test_wrong_dataset_for_the_file_gets_a_hint(shared_data):
    with pytest.raises(DatasetFormatError, match=r"missing field 'paragraphs'.*looks like HotpotQA: pass dataset='hotpotqa'"):
        load_examples("musique", data_files=shared_data / FILES["hotpotqa"][0])
    with pytest.raises(DatasetFormatError, match=r"looks like MuSiQue: pass dataset='musique'"):
        load_examples("hotpotqa", data_files=shared_data / FILES["musique"][0])


def test_other_broken_files(tmp_path, shared_data):
    with pytest.raises(DatasetFormatError, match="empty"):
        load_examples("hotpotqa", data_files=_write(tmp_path, "empty.json", "\n"))
    with pytest.raises(DatasetFormatError, match=r"record 0: should be a JSON object, got list"):
        load_examples("hotpotqa", data_files=_write(tmp_path, "nested.json", "[[1, 2]]"))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_examples("hotpotqa", data_files=tmp_path / "nope.json")
    with pytest.raises(ValueError, match="data_files is empty"):
        load_examples("hotpotqa", data_files=[])
    raws = _raw(shared_data, "hotpotqa")[:2]
    raws[1]["_id"] = raws[0]["_id"]
    with pytest.raises(DatasetFormatError, match=r"record 1 .*duplicate id .*first seen at .*record 0"):
        load_examples("hotpotqa", data_files=_write(tmp_path, "dup.json", json.dumps(raws)))
    raws = _raw(shared_data, "hotpotqa")[:1]
    raws[0]["supporting_facts"] = []
    with pytest.raises(DatasetFormatError, match=r"field 'supporting_facts' is empty"):
        load_examples("hotpotqa", data_files=_write(tmp_path, "nosup.json", json.dumps(raws)))


# --------------------------------------------------------------------------- through the env

ENV_IDS = {"hotpotqa": "HotpotQA-v0", "2wikimultihopqa": "TwoWikiMultihopQA-v0", "musique": "MuSiQue-v0"}


def _oracle_episode(env, index):
    env.reset(seed=0, options={"index": index})
    oracle = env.unwrapped.oracle_action
    while True:
        _, _, terminated, truncated, info = env.step(oracle())
        if terminated or truncated:
            assert terminated and not truncated
            return info


@pytest.mark.parametrize("name", list(FILES))
def test_registered_ids_with_local_files_oracle_reaches_em_1(shared_data, name):
    import gymnasium as gym

    import toolgym  # noqa: F401  (registers the ids)

    env = gym.make(ENV_IDS[name], data_files=shared_data / FILES[name][0], corpus="example", format="tags")
    examples = env.unwrapped.examples
    assert len(examples) == FILES[name][1]
    infos = [_oracle_episode(env, i) for i in range(len(examples))]
    assert [i["question_id"] for i in infos] == [e.id for e in examples]
    assert all(i["result"]["extras"]["qa"]["em"] == 1.0 and i["result"]["answer"] == e.answer
               for i, e in zip(infos, examples, strict=True))
    # the evidence reward is reachable on every dataset: gold passages found by searching their titles
    assert all(i["found_supporting"] for i in infos)
    found = sum(len(i["found_supporting"]) for i in infos)
    needed = sum(len(e.supporting_idxs) or len(set(e.supporting_titles)) for e in examples)
    assert found / needed > 0.9


def test_multihopqa_pooled_and_external_jsonl_corpora(shared_data, tmp_path):
    import gymnasium as gym

    import toolgym  # noqa: F401
    from toolgym.envs.multihop_qa.corpus import pooled_corpus

    path = shared_data / FILES["hotpotqa"][0]
    env = gym.make("MultiHopQA-v0", dataset="hotpotqa", data_files=str(path), corpus="pooled")
    pool = pooled_corpus(load_examples("hotpotqa", data_files=path))
    assert env.unwrapped.passages == pool and len(pool) > 2000
    info = _oracle_episode(env, 0)
    assert info["result"]["extras"]["qa"]["em"] == 1.0 and info["found_supporting"]

    # an external corpus in Search-R1's row layout (quoted titles): evidence is matched by title there
    musique = shared_data / FILES["musique"][0]
    pool = pooled_corpus(load_examples("musique", data_files=musique))
    corpus = tmp_path / "wiki.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "contents": f'"{p.title}"\n{p.text}'}) + "\n" for i, p in enumerate(pool)))
    env = gym.make("MuSiQue-v0", data_files=musique, corpus=str(corpus), limit=5)
    assert len(env.unwrapped.examples) == 5 and len(env.unwrapped.passages) == len(pool)
    info = _oracle_episode(env, 0)
    assert info["result"]["extras"]["qa"]["em"] == 1.0 and info["found_supporting"]


@pytest.mark.parametrize("chunk", [1 << 20, 1000, 50])
def test_error_position_is_the_same_whatever_the_read_size(shared_data, tmp_path, monkeypatch, chunk):
    raws = _raw(shared_data, "hotpotqa")[:30]
    text = "[\n" + ",\n".join(json.dumps(r) for r in raws) + "\n]"
    at = text.index(raws[20]["_id"]) + 5
    path = _write(tmp_path, "bad.json", text[:at] + "\x00" + text[at:])
    line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
    monkeypatch.setattr(records, "_CHUNK", chunk)
    with pytest.raises(DatasetFormatError, match=rf"record 20 is not valid JSON \(.*: line {line} column {column}\)"):
        load_examples("hotpotqa", data_files=path)


def test_offset_and_limit_split_the_records_into_disjoint_parts(shared_data):
    path = shared_data / "hotpotqa_dev_distractor.sample.json"
    train = gym.make("HotpotQA-v0", data_files=str(path), corpus="example", limit=120).unwrapped
    held_out = gym.make("HotpotQA-v0", data_files=str(path), corpus="example", offset=120).unwrapped
    everything = gym.make("HotpotQA-v0", data_files=str(path), corpus="example").unwrapped
    ids = lambda env: [e.id for e in env.examples]  # noqa: E731
    assert ids(train) + ids(held_out) == ids(everything)
    assert len(train.examples) == 120 and not set(ids(train)) & set(ids(held_out))
    with pytest.raises(ValueError, match="offset must be a non-negative integer"):
        gym.make("HotpotQA-v0", data_files=str(path), offset=-1)
    with pytest.raises(ValueError, match="does not apply to dataset='synthetic'"):
        gym.make("MultiHopQA-v0", offset=3)
