"""Passage corpus files: what ``toolgym index`` and ``toolgym serve-retriever`` index and serve, and
what a search env's ``corpus=PATH`` searches. Rows ``{id, title, text}`` or Search-R1's / FlashRAG's
``{id, contents}``, one JSON object a line.
"""

from __future__ import annotations

import json
import zlib
from os import PathLike
from pathlib import Path

from toolgym.envs.records import DatasetFormatError, number_error, open_text, unreadable_file
from toolgym.envs.retrieval.base import Passage, passage_from_contents


def load_corpus_jsonl(path: str | PathLike[str]) -> list[Passage]:
    """Read a JSONL corpus: rows ``{"id", "title", "text"}`` or ``{"id", "contents"}``.

    ``contents`` rows follow Search-R1 / FlashRAG: ``'"Title"\\ntext'`` (the quotes are removed).
    ``.gz`` and ``.bz2`` files are read transparently. Blank lines are skipped. Raises
    ``DatasetFormatError`` naming the file and line for invalid JSON, a missing field or a
    duplicate id, and ``FileNotFoundError`` for a missing file.

    This holds every passage in memory (about 1 KB each): fine up to a few million passages.
    For a full Wikipedia dump build a Lucene index and pass its directory instead.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {str(path)!r} (resolved to {path.resolve()}).")
    passages: list[Passage] = []
    first_line: dict[str, int] = {}
    line_no = 0
    try:
        with open_text(path) as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                where = f"{path}: line {line_no}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise DatasetFormatError(
                        f"{where} is not valid JSON ({err.msg}: column {err.colno}); each line must be one "
                        'object like {"id": "1", "title": "...", "text": "..."} or {"id": "1", "contents": "..."}.'
                    ) from None
                except ValueError as err:  # e.g. an integer of more than 4,300 digits
                    raise DatasetFormatError(f"{where} cannot be read: {number_error(err)}") from None
                if not isinstance(row, dict):
                    raise DatasetFormatError(f"{where}: expected a JSON object, got {type(row).__name__}.")
                pid = row.get("id", row.get("_id", row.get("docid")))
                if not isinstance(pid, str | int) or isinstance(pid, bool):
                    raise DatasetFormatError(
                        f"{where}: missing field 'id' (or it is not a string/integer: {pid!r}); fields present: "
                        f"{', '.join(sorted(row)) or 'none'}."
                    )
                pid = str(pid)
                if "text" in row:
                    title, text = row.get("title", ""), row["text"]
                    if not isinstance(title, str) or not isinstance(text, str):
                        raise DatasetFormatError(f"{where}: fields 'title' and 'text' must be strings.")
                elif "contents" in row:
                    if not isinstance(row["contents"], str):
                        raise DatasetFormatError(f"{where}: field 'contents' must be a string, got {row['contents']!r:.60}.")
                    parsed = passage_from_contents(pid, row["contents"])
                    title, text = parsed.title, parsed.text
                else:
                    raise DatasetFormatError(
                        f"{where}: missing field 'text' (or Search-R1's 'contents'); fields present: "
                        f"{', '.join(sorted(row)) or 'none'}."
                    )
                if pid in first_line:
                    raise DatasetFormatError(f"{where}: duplicate id {pid!r} (first on line {first_line[pid]}).")
                first_line[pid] = line_no
                passages.append(Passage(id=pid, title=title, text=text))
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as err:
        raise unreadable_file(path, err, f"after line {line_no}" if line_no else "from its start") from None
    if not passages:
        raise DatasetFormatError(f"{path}: the corpus file has no passages.")
    return passages
