"""GSM8K data files: every problem with a file is one error naming the file, the line or record
and the fix (the QA loaders' reader), never a decoder's traceback."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import toolgym  # noqa: F401 - registers the ids
from toolgym.envs.multihop_qa.datasets import DatasetFormatError


def test_gsm8k_file_errors_name_the_file_and_line(tmp_path):
    from toolgym.envs.math.problems import load_gsm8k

    good = json.dumps({"question": "Tom has 3 apples and buys 4. How many?", "answer": "3+4=<<3+4=7>>7\n#### 7"})
    cut = tmp_path / "cut.jsonl"
    cut.write_text(good + "\n" + good[:40])
    with pytest.raises(DatasetFormatError, match=r"cut\.jsonl: line 2 \(record 1\) is not valid JSON.*truncated"):
        load_gsm8k(data_files=cut)
    missing = tmp_path / "missing.jsonl"
    missing.write_text(good + "\n" + json.dumps({"question": "q"}) + "\n")
    with pytest.raises(DatasetFormatError, match=r"missing\.jsonl: record 1: field 'answer' is missing.*#### 42"):
        load_gsm8k(data_files=missing)
    final = tmp_path / "final.jsonl"
    final.write_text(json.dumps({"question": "q", "answer": "no final line"}) + "\n")
    with pytest.raises(DatasetFormatError, match=r"final\.jsonl: GSM8K record 0 has no '#### answer' line"):
        load_gsm8k(data_files=final)
    binary = tmp_path / "gsm8k.jsonl.gz"
    binary.write_text(good)
    with pytest.raises(DatasetFormatError, match=r"gsm8k\.jsonl\.gz: cannot decompress"):
        load_gsm8k(data_files=binary)
    with pytest.raises(DatasetFormatError, match=r"data_files=42 is a int"):
        load_gsm8k(data_files=42)
    with pytest.raises(DatasetFormatError, match=r"data_files=42 is a int: pass the path of a GSM8K JSONL file"):
        gym.make("ToolMath-v0", dataset="gsm8k", data_files=42)


def test_gsm8k_hub_failure_names_the_hub_id_and_the_fix(monkeypatch):
    import sys
    import types

    from toolgym.envs.math.problems import load_gsm8k
    from toolgym.envs.multihop_qa.datasets import DatasetLoadError

    def load_dataset(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub")

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with pytest.raises(DatasetLoadError, match=r"GSM8K from the hub \(openai/gsm8k\[main\] split 'test'\): "
                                               r"ConnectionError.*HF_HUB_OFFLINE=1.*grade-school-math.*data_files="):
        load_gsm8k("test")
