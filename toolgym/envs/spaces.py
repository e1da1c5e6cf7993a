"""Spaces for text: any unicode string, and a conversation of chat messages.

Gymnasium's stock ``Text`` space accepts only characters from a fixed set (letters and digits by
default), so it cannot hold what a language model writes. These two accept any unicode text.
Both batch in vector envs (Gymnasium's generic rule makes a ``Tuple`` of copies), and ``Messages``
registers shared-memory functions so ``AsyncVectorEnv`` works with its default ``shared_memory=True``.
"""

from __future__ import annotations

import json
import multiprocessing
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.spaces import Space
from gymnasium.vector.utils import shared_memory as _shm

# What ``sample()`` draws characters from: ASCII letters and digits, punctuation a tool call uses,
# whitespace, and a few non-ASCII letters so that code paths see multi-byte text.
_SAMPLE_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    ' \n\t<>/{}[]":,._-=?!' "éßøñ中文Ж"
)
ROLES = ("system", "user", "assistant", "tool")


class UnicodeText(Space[str]):
    """Any ``str`` of at most ``max_length`` characters.

    >>> space = UnicodeText(max_length=8, seed=0)
    >>> space.contains("héllo 世界"), space.contains(42), space.contains("x" * 9)
    (True, False, False)
    """

    def __init__(self, max_length: int = 1 << 20, *, min_length: int = 0, seed: int | np.random.Generator | None = None):
        if not 0 <= min_length <= max_length:
            raise ValueError(f"need 0 <= min_length <= max_length, got min_length={min_length}, max_length={max_length}.")
        self.max_length = int(max_length)
        self.min_length = int(min_length)
        super().__init__(dtype=str, seed=seed)

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        length = int(self.np_random.integers(self.min_length, min(self.max_length, 64) + 1))
        chars = self.np_random.integers(0, len(_SAMPLE_ALPHABET), size=length)
        return "".join(_SAMPLE_ALPHABET[i] for i in chars)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"UnicodeText(max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, UnicodeText)
            and other.max_length == self.max_length
            and other.min_length == self.min_length
        )


class Messages(Space[tuple]):
    """A conversation: a tuple of ``{"role": ..., "content": str}`` dicts.

    At most ``max_messages`` messages and ``max_chars`` characters of content in all; roles are
    ``system``, ``user``, ``assistant`` and ``tool``. This is what a chat model conditions on, ready
    for ``tokenizer.apply_chat_template``.

    >>> space = Messages(max_messages=4, max_chars=100)
    >>> space.contains(({"role": "user", "content": "Who directed Alien?"},))
    True
    >>> space.contains(({"role": "robot", "content": "hi"},))
    False
    """

    def __init__(self, max_messages: int = 256, max_chars: int = 1 << 20, *, seed: int | np.random.Generator | None = None):
        if max_messages < 1 or max_chars < 1:
            raise ValueError(f"max_messages and max_chars must be >= 1, got {max_messages} and {max_chars}.")
        self.max_messages = int(max_messages)
        self.max_chars = int(max_chars)
        self._text = UnicodeText(max_length=max_chars)
        super().__init__(dtype=object, seed=seed)

    def seed(self, seed: int | None = None) -> int | list[int]:
        seeds = super().seed(seed)
        self._text.seed(int(self.np_random.integers(2**31)))
        return seeds

    def sample(self, mask: Any = None, probability: Any = None) -> tuple[dict[str, str], ...]:
        n = int(self.np_random.integers(1, min(self.max_messages, 4) + 1))
        roles = ("system",) + tuple(self.np_random.choice(ROLES[1:], size=n - 1))
        messages, budget = [], self.max_chars
        for role in roles:
            content = self._text.sample()[:budget]
            budget -= len(content)
            messages.append({"role": str(role), "content": content})
        return tuple(messages)

    def contains(self, x: Any) -> bool:
        if not isinstance(x, tuple) or not 0 < len(x) <= self.max_messages:
            return False
        total = 0
        for message in x:
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                return False
            content = message.get("content")
            if not isinstance(content, str):
                return False
            total += len(content)
        return total <= self.max_chars

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def to_jsonable(self, sample_n: Sequence[tuple]) -> list[list[dict]]:
        return [[dict(m) for m in sample] for sample in sample_n]

    def from_jsonable(self, sample_n: list[list[dict]]) -> list[tuple]:
        return [tuple(dict(m) for m in sample) for sample in sample_n]

    def __repr__(self) -> str:
        return f"Messages(max_messages={self.max_messages}, max_chars={self.max_chars})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Messages) and (other.max_messages, other.max_chars) == (self.max_messages, self.max_chars)

    # Bytes one conversation may take in shared memory: JSON escapes at most 6 bytes a character,
    # plus the role and punctuation of each message and a length prefix.
    @property
    def _slot_bytes(self) -> int:
        return 6 * self.max_chars + 48 * self.max_messages + 8


# A model can write lone surrogates ("\ud800"), which strict UTF-8 refuses; "surrogatepass"
# encodes them in 3 bytes (within the slot's 6 a character) and decodes them back unchanged.
_SURROGATES = "surrogatepass"


class _SharedMessages(Sequence):
    """A live view of the conversations in shared memory: decoded when read.

    ``AsyncVectorEnv`` reads shared memory once, at construction, and then returns that object
    after every step; a live view (rather than a snapshot) is what keeps the returned observations
    current. ``deepcopy`` gives a plain tuple.
    """

    def __init__(self, buffer, n: int, slot: int):
        self._buffer, self._n, self._slot = buffer, n, slot

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        if not -self._n <= index < self._n:
            raise IndexError(index)
        start = (index % self._n) * self._slot
        raw = memoryview(self._buffer.get_obj()).cast("B")[start : start + self._slot]
        (length,) = struct.unpack_from("<I", raw)
        if length == 0:
            return ()
        return tuple(json.loads(bytes(raw[4 : 4 + length]).decode("utf-8", _SURROGATES)))

    def __deepcopy__(self, memo) -> tuple:
        return tuple(self)

    def __repr__(self) -> str:
        return repr(tuple(self))


@_shm.create_shared_memory.register(Messages)
def _create_messages_shared_memory(space: Messages, n: int = 1, ctx=None):
    return (ctx or multiprocessing).Array("B", n * space._slot_bytes)


@_shm.read_from_shared_memory.register(Messages)
def _read_messages_from_shared_memory(space: Messages, shared_memory, n: int = 1):
    return _SharedMessages(shared_memory, n, space._slot_bytes)


@_shm.write_to_shared_memory.register(Messages)
def _write_messages_to_shared_memory(space: Messages, index: int, value, shared_memory) -> None:
    data = json.dumps(list(value), ensure_ascii=False).encode("utf-8", _SURROGATES)
    if len(data) + 4 > space._slot_bytes:
        raise ValueError(f"observation of {len(data)} bytes does not fit the {space._slot_bytes}-byte slot of {space}.")
    slot = space._slot_bytes
    view = memoryview(shared_memory.get_obj()).cast("B")
    view[index * slot : index * slot + 4] = struct.pack("<I", len(data))
    view[index * slot + 4 : index * slot + 4 + len(data)] = data
