"""The streaming record reader shared by the task families' loaders (toolgym.envs.records)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolgym.envs.records import DatasetFormatError, read_records

REPO = Path(__file__).resolve().parents[2]


def test_records_stream_so_a_reader_that_stops_early_never_meets_a_later_bad_line(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text(json.dumps({"id": 1}) + "\n" + json.dumps({"id": 2}) + "\n{broken\n")
    records = read_records(path)
    assert next(records) == (str(path), 0, {"id": 1})
    assert next(records) == (str(path), 1, {"id": 2})
    with pytest.raises(DatasetFormatError, match=r"dev.jsonl: line 3 \(record 2\) is not valid JSON"):
        next(records)


def test_every_path_is_checked_when_asked_before_any_record_is_read(tmp_path):
    good = tmp_path / "a.json"
    good.write_text("[]")
    with pytest.raises(FileNotFoundError, match="data file not found: 'nowhere.json'"):
        read_records([good, "nowhere.json"])  # no record asked for yet


def test_the_env_side_data_modules_import_no_torch_or_hub_packages():
    """The synthetic world, the dataset loaders and the reader are env layer: no torch, transformers,
    trl or Hugging Face ``datasets`` at import (a fresh interpreter: this one has imported them)."""
    script = ("import sys\n"
              "import toolgym.envs.records, toolgym.envs.multihop_qa.datasets, toolgym.envs.multihop_qa.corpus\n"
              "import toolgym.envs.multihop_qa.synthetic\n"
              "from toolgym.envs.multihop_qa.synthetic import names, passages, schema, templates, world\n"
              "print(sorted({'torch', 'transformers', 'trl', 'datasets', 'peft'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout
