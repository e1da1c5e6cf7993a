"""Answer extraction from a model's free-text reply: any string gives a string, never an error."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolgym.benchmarks.agents import extract_answer


def test_tag_call_and_first_line():
    assert extract_answer("<think><answer>no</answer></think><search>q</search><answer> Lyon </answer>") == "Lyon"
    call = json.dumps({"name": "answer", "arguments": {"answer": " 1871 "}})
    assert extract_answer(f"<tool_call>{call}</tool_call>") == "1871"
    assert extract_answer('<tool_call>{"name": "answer", "arguments": {"answer": 12}}</tool_call>') == "12"
    assert extract_answer("\nFinal answer: Ann Lee\nbecause...") == "Ann Lee"
    assert extract_answer("") == ""


def test_many_unclosed_tags_fall_back_to_the_first_line():
    # the regex <answer>(.*?)</answer> rescanned the rest of the text from every opening tag: minutes
    text = "<answer>x" * 20000
    assert extract_answer(text) == text
    assert extract_answer("<answer>x" * 20000 + "</answer>") == "x" + "<answer>x" * 19999


def test_json_that_json_loads_refuses_is_skipped():
    too_long = "9" * 5000  # over Python's 4,300-digit int-to-str limit: ValueError
    assert extract_answer(f'<tool_call>{{"name": "answer", "arguments": {{"answer": {too_long}}}}}</tool_call>') \
        .startswith("<tool_call>")
    deep = "[" * 100000  # RecursionError
    assert extract_answer(f'<tool_call>{{"name": "answer", "arguments": {deep}}}</tool_call>\nplain').startswith("<")
    nested = "[" * 900 + "]" * 900  # decodes; printing it must not raise either
    assert extract_answer(f'<tool_call>{{"name": "answer", "arguments": {{"answer": {nested}}}}}</tool_call>')
    assert extract_answer('<tool_call>{"name": "answer", "arguments": "not an object"}</tool_call>').startswith("<")


_PIECES = st.sampled_from([
    "<answer>", "</answer>", "<think>", "</think>", "<tool_call>", "</tool_call>", "<search>", "</search>",
    '{"name": "answer", "arguments": {"answer": ', '"x"', "}}", "[", "]" * 3, "9" * 4400, "\n", "Answer: ",
    "\ud800", "\x00", "<", ">", "/",
])
_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=20)), max_size=12).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=_TEXT)
def test_any_text_gives_a_string(text):
    assert isinstance(extract_answer(text), str)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(prefix=st.text(alphabet=st.characters(blacklist_characters="<"), max_size=50),
       gold=st.text(alphabet=st.characters(blacklist_characters="<"), max_size=20))
def test_a_closed_answer_tag_wins(prefix, gold):
    assert extract_answer(f"{prefix}<answer>{gold}</answer>") == gold.strip()
