import copy
import multiprocessing

import pytest
from gymnasium.vector.utils import shared_memory

from toolgym.envs.spaces import Messages, UnicodeText


def test_unicode_text_accepts_any_unicode_and_bounds_length():
    space = UnicodeText(max_length=5)
    assert space.contains("héllo")
    assert space.contains("中文")
    assert not space.contains("toolong")
    assert not space.contains(b"bytes")


def test_unicode_text_samples_are_contained_and_seeded():
    a, b = UnicodeText(max_length=100, seed=3), UnicodeText(max_length=100, seed=3)
    samples = [a.sample() for _ in range(20)]
    assert samples == [b.sample() for _ in range(20)]
    assert all(a.contains(s) for s in samples)


def test_unicode_text_rejects_bad_bounds():
    with pytest.raises(ValueError, match="min_length=5, max_length=2"):
        UnicodeText(max_length=2, min_length=5)


@pytest.mark.parametrize(
    "value, ok",
    [
        (({"role": "user", "content": "hi"},), True),
        ((), False),  # an observation always has at least the task
        ([{"role": "user", "content": "hi"}], False),  # a list, not a tuple
        (({"role": "bot", "content": "hi"},), False),
        (({"role": "user", "content": 3},), False),
        (({"role": "user"},), False),
        (({"role": "user", "content": "x" * 11},), False),  # over max_chars
        (tuple({"role": "user", "content": ""} for _ in range(4)), False),  # over max_messages
    ],
)
def test_messages_contains(value, ok):
    assert Messages(max_messages=3, max_chars=10).contains(value) is ok


def test_messages_sample_is_contained():
    space = Messages(max_messages=5, max_chars=50, seed=0)
    for _ in range(50):
        assert space.contains(space.sample())


def test_messages_equality_and_jsonable_round_trip():
    assert Messages(3, 10) == Messages(3, 10) != Messages(4, 10)
    space = Messages()
    sample = ({"role": "system", "content": "s"}, {"role": "user", "content": "ü"})
    assert space.from_jsonable(space.to_jsonable([sample])) == [sample]


def test_messages_shared_memory_is_a_live_view():
    space = Messages(max_messages=4, max_chars=100)
    buffer = shared_memory.create_shared_memory(space, n=2, ctx=multiprocessing)
    view = shared_memory.read_from_shared_memory(space, buffer, n=2)
    first = ({"role": "user", "content": "héllo 中文"},)
    shared_memory.write_to_shared_memory(space, 1, first, buffer)
    assert view[1] == first and view[0] == ()
    second = ({"role": "user", "content": "changed"}, {"role": "tool", "content": "\x00\n\""})
    shared_memory.write_to_shared_memory(space, 1, second, buffer)
    assert view[1] == second  # read again after the write: live, not a snapshot
    assert copy.deepcopy(view) == ((), second)


@pytest.mark.parametrize("content", ["\ud800", "a\udfffb", "\udbff\udc00", "😀\ud83d", "\x00" * 3 + "\U0010ffff"])
def test_messages_shared_memory_round_trips_lone_surrogates(content):
    # A model can sample lone surrogates; strict UTF-8 refused them and killed AsyncVectorEnv's worker.
    space = Messages(max_messages=2, max_chars=len(content))
    buffer = shared_memory.create_shared_memory(space, n=1, ctx=multiprocessing)
    value = ({"role": "assistant", "content": content},)
    shared_memory.write_to_shared_memory(space, 0, value, buffer)
    assert shared_memory.read_from_shared_memory(space, buffer, n=1)[0] == value
