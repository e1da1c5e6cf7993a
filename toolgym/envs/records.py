"""Records of a data set, one at a time: from local files (a JSON list, JSON lines or parquet,
``.gz``/``.bz2`` read transparently) streamed record by record, so a caller that stops early never
reads the rest of a 500 MB file; or a split from the Hugging Face hub.

Every problem with a file (missing, empty, not UTF-8, a broken archive, truncated, invalid JSON at
a line and column) is a :class:`DatasetFormatError` (or ``FileNotFoundError``) that names the file,
where reading stopped and the fix; a hub failure is a :class:`DatasetLoadError` that says how to do
without the hub. Task families turn the records into their examples (``multihop_qa.datasets``,
``math.problems``).
"""

from __future__ import annotations

import bz2
import gzip
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

__all__ = [
    "DatasetFormatError",
    "DatasetLoadError",
    "PathArg",
    "check_data_files",
    "load_from_hub",
    "number_error",
    "open_text",
    "preview",
    "read_records",
    "unreadable_file",
]

PathArg = str | PathLike[str]
_CHUNK = 1 << 20  # characters read at a time from data files


class DatasetFormatError(ValueError):
    """A data file or record does not have the layout its dataset's official format promises."""


class DatasetLoadError(OSError):
    """A dataset could not be fetched from the Hugging Face hub (offline, hub down, id moved)."""


def load_from_hub(hub_id: str, config: str | None, split: str, *, display: str, official: str) -> Any:
    """``datasets.load_dataset(hub_id, config, split=split)``; a failure raises a
    :class:`DatasetLoadError` that names the hub id, the cause and how to do without the hub."""
    import datasets  # the callers check it is installed and say which extra provides it

    try:
        return datasets.load_dataset(hub_id, config, split=split)
    except Exception as err:  # offline, hub down, id moved, a broken cache: all say the same fix
        source = hub_id + (f"[{config}]" if config else "") + f" split {split!r}"
        offline = next((v for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
                        if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")), None)
        hub_fix = (f"{offline} is set, so only a cached copy can be used: unset it to download"
                   if offline else "if it was downloaded before, set HF_HUB_OFFLINE=1 to use the cached copy")
        raise DatasetLoadError(
            f"Could not load {display} from the hub ({source}): {type(err).__name__}: {err}. "
            f"Fix: {hub_fix}; or, without hub access, download the official files from {official} "
            "and pass data_files= with the local file."
        ) from err


def preview(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters: a field's value quoted in an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def open_text(path: Path):
    """Open a text data file, decompressing ``.gz`` and ``.bz2``."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".bz2":
        return bz2.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _iter_json_records(path: Path) -> Iterator[tuple[int, Any]]:
    """Records of a JSON list *or* a JSON-lines file, whichever the file is, one at a time.

    Files that are not UTF-8 text, fake or truncated ``.gz``/``.bz2`` archives raise
    ``DatasetFormatError`` naming the file and the fix, never a decoder's bare exception.
    """
    last = -1
    try:
        with open_text(path) as fh:
            head = fh.read(_CHUNK)
            stripped = head.lstrip()
            if not stripped:
                raise DatasetFormatError(f"{path}: the file is empty; expected a JSON list or JSON lines of records.")
            records = _iter_json_array(path, fh, head) if stripped[0] == "[" else _iter_json_lines(path, fh, head)
            for last, record in records:
                yield last, record
    except (UnicodeDecodeError, OSError, EOFError, zlib.error) as err:
        raise unreadable_file(path, err, f"after record {last}" if last >= 0 else "from its start") from None


def unreadable_file(path: Path, err: Exception, at: str) -> Exception:
    """The ``DatasetFormatError`` for a file that cannot be decoded or decompressed (``at``: where
    reading stopped); a missing or forbidden file keeps its own error."""
    if isinstance(err, FileNotFoundError | PermissionError | IsADirectoryError):
        return err
    if isinstance(err, UnicodeDecodeError):
        return DatasetFormatError(
            f"{path}: not UTF-8 text (byte {err.object[err.start:err.start + 1]!r} on line {_bad_line(path)}): is it "
            "a binary or compressed file? Data files must be UTF-8 JSON or JSON lines (.gz/.bz2 compressed, or "
            "Search-R1's .parquet); re-save it as UTF-8 or give the right file."
        )
    kind = path.suffix.lstrip(".")
    fix = ("it is truncated. Download it again." if isinstance(err, EOFError) else
           f"it is not a valid {kind} archive ({err}). Download it again, or if it is plain text rename it "
           f"without the .{kind} suffix.")
    return DatasetFormatError(f"{path}: cannot decompress {at}: {fix}")


def _bad_line(path: Path) -> int:
    """The first line of ``path`` that is not UTF-8 (read again, in bytes, only to report it)."""
    opener = {".gz": gzip.open, ".bz2": bz2.open}.get(path.suffix, open)
    with opener(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def _iter_parquet(path: Path) -> Iterator[tuple[int, Any]]:
    """Rows of a parquet file (Search-R1's data), a batch at a time."""
    try:
        import pyarrow.parquet as pq  # installed with `datasets`; only parquet files need it
    except ImportError as err:
        raise ImportError(f"{path}: reading parquet needs pyarrow: pip install pyarrow (or 'toolgym[bench]').") from err
    try:
        table = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises its own error types for a bad file
        raise DatasetFormatError(
            f"{path}: not a readable parquet file ({type(err).__name__}: {err}); give Search-R1's .parquet "
            "as written, or a JSON/JSON-lines file."
        ) from None
    index = 0
    for batch in table.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            yield index, row
            index += 1


def _iter_json_array(path: Path, fh, buffer: str) -> Iterator[tuple[int, Any]]:
    """Stream the items of a top-level JSON list without loading the whole file."""
    decoder = json.JSONDecoder()
    pos = buffer.index("[") + 1
    # Text already dropped from the buffer: its length, its newlines, where its last newline was.
    offset, lines_before, last_newline = 0, 0, -1
    index, eof, expect_item = 0, False, True

    def refill(keep_from: int) -> None:
        nonlocal buffer, pos, offset, lines_before, last_newline, eof
        more = fh.read(_CHUNK)
        eof = not more
        dropped = buffer[:keep_from]
        if "\n" in dropped:
            lines_before += dropped.count("\n")
            last_newline = offset + dropped.rfind("\n")
        offset += keep_from
        buffer, pos = buffer[keep_from:] + more, pos - keep_from

    def line_col(at: int) -> tuple[int, int]:
        newline = buffer.rfind("\n", 0, at)
        column = at - newline if newline >= 0 else offset + at - last_newline
        return lines_before + buffer.count("\n", 0, at) + 1, column

    while True:
        while pos < len(buffer) and buffer[pos] in " \t\r\n":
            pos += 1
        if pos >= len(buffer):
            if eof:
                raise DatasetFormatError(
                    f"{path}: the file ends inside the JSON list after record {index - 1}: it is truncated. "
                    "Download it again."
                )
            refill(pos)
            continue
        char = buffer[pos]
        if char == "]":
            return
        if char == "," and not expect_item:
            pos, expect_item = pos + 1, True
            continue
        if not expect_item:
            line, col = line_col(pos)
            raise DatasetFormatError(
                f"{path}: invalid JSON after record {index - 1} at line {line} column {col}: "
                f"expected ',' or ']', found {buffer[pos:pos + 20]!r}."
            )
        try:
            item, end = decoder.raw_decode(buffer, pos)
        except json.JSONDecodeError as err:
            # The buffer may just end mid-record: read on, unless the error is plainly inside it.
            ran_out = err.msg.startswith("Unterminated string") or err.pos >= len(buffer.rstrip()) - 64
            if not eof and ran_out:
                refill(pos)
                continue
            line, col = line_col(err.pos)
            truncated = eof and (err.msg.startswith("Unterminated string") or err.pos >= len(buffer.rstrip()))
            why = "the file ends inside it: it is truncated. Download it again." if truncated else "fix or re-download the file."
            raise DatasetFormatError(
                f"{path}: record {index} is not valid JSON ({err.msg}: line {line} column {col}); {why}"
            ) from None
        except ValueError as err:  # e.g. an integer of more than 4,300 digits
            raise DatasetFormatError(f"{path}: record {index} cannot be read: {number_error(err)}") from None
        yield index, item
        index, pos, expect_item = index + 1, end, False


def _iter_json_lines(path: Path, fh, head: str) -> Iterator[tuple[int, Any]]:
    index = 0
    pending = head
    line_no = 0
    while True:
        chunk = fh.read(_CHUNK)
        pending += chunk
        lines = pending.split("\n")
        pending = lines.pop() if chunk else ""
        for line in lines:
            line_no += 1
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                last = not chunk and line is lines[-1]
                why = "it is truncated. Download it again." if last else "each line must be one JSON record."
                raise DatasetFormatError(
                    f"{path}: line {line_no} (record {index}) is not valid JSON ({err.msg}: column {err.colno}); {why}"
                ) from None
            except ValueError as err:  # e.g. an integer of more than 4,300 digits
                raise DatasetFormatError(
                    f"{path}: line {line_no} (record {index}) cannot be read: {number_error(err)}"
                ) from None
            yield index, item
            index += 1
        if not chunk:
            return


def number_error(err: ValueError) -> str:
    return (f"{str(err).split(':')[0]} ({type(err).__name__}); a record holds a number too long to be an "
            "answer or an id: fix or remove that record.")


def check_data_files(data_files: Any) -> list[PathArg]:
    """``data_files`` as a list of path-likes; any other type is a ``DatasetFormatError`` saying what to pass."""
    if isinstance(data_files, str | PathLike):
        items = [data_files]
    elif isinstance(data_files, list | tuple):
        items = list(data_files)
    else:
        raise DatasetFormatError(
            f"data_files={preview(data_files)} is a {type(data_files).__name__}: pass a path or a list of paths, "
            "e.g. data_files='dev.jsonl'."
        )
    bad = next((item for item in items if not isinstance(item, str | PathLike)), None)
    if bad is not None:
        raise DatasetFormatError(
            f"data_files entries must be paths, got {type(bad).__name__} {preview(bad)}: pass e.g. "
            "data_files=['dev.jsonl']."
        )
    return items


def _as_paths(data_files: PathArg | Sequence[PathArg]) -> list[Path]:
    items = check_data_files(data_files)
    if not items:
        raise ValueError("data_files is empty: pass a path or a list of paths to the dataset's official files.")
    paths = []
    for item in items:
        path = Path(item).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"data file not found: {str(item)!r} (resolved to {path.resolve()}).")
        paths.append(path)
    return paths


def read_records(data_files: PathArg | Sequence[PathArg]) -> Iterator[tuple[str, int, Any]]:
    """``(file, index, record)`` of JSON list, JSON lines or parquet files, one record at a time;
    every problem with a file is a ``DatasetFormatError`` (or ``FileNotFoundError``) naming it."""
    return _records_from_files(_as_paths(data_files))


def _records_from_files(paths: list[Path]) -> Iterator[tuple[str, int, Any]]:
    for path in paths:
        read = _iter_parquet if path.suffix == ".parquet" else _iter_json_records
        for index, record in read(path):
            yield str(path), index, record
