"""On-disk caches of indexes and embeddings, keyed by the content of the corpus they were built from."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from toolgym.envs.retrieval.base import Passage

logger = logging.getLogger(__name__)

# Bump when the tokenisation or an on-disk layout changes, so old caches are not trusted.
_CACHE_VERSION = "1"


def default_cache_dir() -> Path:
    """Where indexes are cached: ``$TOOLGYM_CACHE`` or ``~/.cache/toolgym``."""
    return Path(os.environ.get("TOOLGYM_CACHE", Path.home() / ".cache" / "toolgym"))


def corpus_fingerprint(passages: Sequence[Passage]) -> str:
    """A content hash of the corpus: the cache key of any index built over it."""
    digest = hashlib.sha256(_CACHE_VERSION.encode())
    for p in passages:
        for field in (p.id, p.title, p.text):
            digest.update(field.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
    return digest.hexdigest()[:24]


def write_atomically(path: Path, write: Callable[[Path], None]) -> bool:
    """Run ``write(tmpdir)`` then rename ``tmpdir`` to ``path``: a crash never leaves half a cache.

    Returns False (after a warning) when the disk refuses: a read-only or full disk must not stop
    the env, it only loses the cache.
    """
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".tmp-"))
        write(tmp)
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
        return True
    except OSError as err:
        logger.warning("could not write the cache at %s: %s", path, err)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        return False


def discard(path: Path, reason: object) -> None:
    """Remove an unusable cache entry so that it is rebuilt, not trusted."""
    logger.warning("rebuilding: the cache at %s is unusable (%s)", path, reason)
    shutil.rmtree(path, ignore_errors=True)
