import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolgym.envs.formats import HermesFormat, TagsFormat, ToolCall, get_format
from toolgym.envs.tool import Tool


class _Tool(Tool):
    def __init__(self, name, properties):
        self.name, self.description = name, f"The {name} tool."
        self.parameters = {"type": "object", "properties": properties, "required": list(properties)}


TOOLS = [
    _Tool("search", {"query": {"type": "string"}}),
    _Tool("answer", {"answer": {"type": "string"}}),
    _Tool("sql", {"query": {"type": "string"}, "limit": {"type": "integer"}}),
]


def hermes(name, **arguments):
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def test_hermes_parses_several_calls_with_free_text_around():
    text = f"I should search.\n{hermes('search', query='Paris')}\nand also {hermes('answer', answer='x')}"
    parsed = HermesFormat().parse(text, TOOLS)
    assert parsed.calls == (ToolCall("search", {"query": "Paris"}), ToolCall("answer", {"answer": "x"}))
    assert parsed.errors == () and parsed.attempted


def test_hermes_ignores_calls_inside_think():
    text = f"<think>maybe {hermes('answer', answer='guess')}</think>{hermes('search', query='q')}"
    assert HermesFormat().parse(text, TOOLS).calls == (ToolCall("search", {"query": "q"}),)


@pytest.mark.parametrize(
    "text, error",
    [
        ("<tool_call>{not json}</tool_call>", "the tool call is not valid JSON"),
        ('<tool_call>{"name": "search"', "no closing </tool_call>"),
        ('<tool_call>["search"]</tool_call>', 'must be a JSON object with a "name"'),
        ('<tool_call>{"arguments": {}}</tool_call>', 'must be a JSON object with a "name"'),
        ("<tool_call></tool_call>", "not valid JSON"),
        ("<tool_call>" + "[" * 100000 + "</tool_call>", "not valid JSON"),
    ],
)
def test_hermes_errors_name_the_problem(text, error):
    parsed = HermesFormat().parse(text, TOOLS)
    assert parsed.calls == () and parsed.attempted
    assert error in parsed.errors[0]


def test_hermes_numbers_errors_when_there_are_several_calls():
    parsed = HermesFormat().parse(f"{hermes('search', query='a')}<tool_call>oops</tool_call>", TOOLS)
    assert len(parsed.calls) == 1 and parsed.errors[0].startswith("tool call 2 is not valid JSON")


def test_hermes_accepts_json_encoded_arguments():
    text = '<tool_call>{"name": "search", "arguments": "{\\"query\\": \\"q\\"}"}</tool_call>'
    assert HermesFormat().parse(text, TOOLS).calls == (ToolCall("search", {"query": "q"}),)


def test_plain_text_is_not_an_attempted_call():
    for fmt in (HermesFormat(), TagsFormat()):
        parsed = fmt.parse("I think the answer is Paris.", TOOLS)
        assert parsed.calls == () and parsed.errors == () and not parsed.attempted


def test_tags_parse_single_string_tools_in_order():
    parsed = TagsFormat().parse("<think>hm <answer>no</answer></think><search> who? </search> <answer>Paris</answer>", TOOLS)
    assert parsed.calls == (ToolCall("search", {"query": "who?"}), ToolCall("answer", {"answer": "Paris"}))


def test_tags_unknown_tag_suggests_the_closest():
    (error,) = TagsFormat().parse("<serch>x</serch>", TOOLS).errors
    assert "Did you mean '<search>'" in error


def test_tags_refuse_structured_tools_and_unclosed_tags():
    assert "cannot be called as a tag" in TagsFormat().parse("<sql>select 1</sql>", TOOLS).errors[0]
    assert "<search> is never closed" in TagsFormat().parse("<search>who", TOOLS).errors[0]


def test_tags_ignore_information_blocks_the_agent_echoes():
    parsed = TagsFormat().parse("<information>Doc 1</information>", TOOLS)
    assert parsed.calls == () and not parsed.attempted


def test_result_messages():
    assert HermesFormat().result_messages(["r1", "r2"], ["note"]) == [
        {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"}, {"role": "user", "content": "note"},
    ]
    assert TagsFormat().result_messages(["r1"], ["note"]) == [
        {"role": "user", "content": "<information>r1</information>\nnote"}
    ]
    assert TagsFormat().result_messages([], []) == []


def test_protocols_name_the_tools():
    assert "search(query: string)" in HermesFormat().protocol(TOOLS)
    assert "<search>query</search>" in TagsFormat().protocol(TOOLS)
    assert "<sql>" not in TagsFormat().protocol(TOOLS)


def test_chat_tools_only_for_hermes():
    assert [t["function"]["name"] for t in HermesFormat().chat_tools(TOOLS)] == ["search", "answer", "sql"]
    assert TagsFormat().chat_tools(TOOLS) is None


def test_get_format_suggests():
    assert get_format("tags").name == "tags"
    with pytest.raises(ValueError, match="Did you mean 'hermes'"):
        get_format("herms")


@pytest.mark.parametrize("fmt", ["hermes", "tags"])
def test_written_calls_parse_back(fmt):
    format_ = get_format(fmt)
    text = format_.write_call("search", {"query": 'Zoë "quoted" <b>'})
    assert format_.parse(text, TOOLS).calls == (ToolCall("search", {"query": 'Zoë "quoted" <b>'}),)


def test_tags_cannot_write_structured_calls():
    with pytest.raises(ValueError, match="one string argument"):
        TagsFormat().write_call("sql", {"query": "x", "limit": 3})


# -- what a policy can sample must never raise ------------------------------------------------------
def test_hermes_integer_beyond_pythons_digit_limit_is_a_parse_error():
    text = '<tool_call>{"name": "search", "arguments": {"query": "q", "n": ' + "1" * 4400 + "}}</tool_call>"
    (error,) = HermesFormat().parse(text, TOOLS).errors
    assert "not valid JSON" in error and "more than 4300 digits" in error


def test_hermes_arguments_string_nested_too_deep_stays_a_string():
    # The second json.loads (JSON-encoded arguments) raised RecursionError on this.
    text = "<tool_call>" + json.dumps({"name": "search", "arguments": "[" * 5000}) + "</tool_call>"
    parsed = HermesFormat().parse(text, TOOLS)
    assert parsed.calls == (ToolCall("search", "[" * 5000),) and parsed.errors == ()


def test_hermes_arguments_string_with_a_huge_integer_stays_a_string():
    arguments = '{"query": ' + "9" * 5000 + "}"
    text = "<tool_call>" + json.dumps({"name": "search", "arguments": arguments}) + "</tool_call>"
    assert HermesFormat().parse(text, TOOLS).calls == (ToolCall("search", arguments),)


_TAG_PIECES = st.sampled_from(["<search>", "</search>", "<answer>", "</answer>", "<think>", "</think>", "<a-b>",
                               "</a-b>", "<serch>", "</serch>", "x", " ", "\n", "<", ">", "/", "<search", "é"])


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(st.lists(_TAG_PIECES, max_size=30).map("".join))
def test_tags_pairing_matches_the_backreference_regex(text):
    # The one-pass pairing must find exactly what the (quadratic) regex finds.
    regex = re.compile(r"<([A-Za-z_][\w-]*)>(.*?)</\1>", re.DOTALL)
    assert TagsFormat.tag_pairs(text) == [(m.group(1), m.group(2).strip()) for m in regex.finditer(text)]


def test_tags_many_unclosed_tags_parse():
    # 11,111 unclosed tags (quadratic for a backreference regex) then one real call.
    parsed = TagsFormat().parse("<search>x" * 11111 + "<answer>Paris</answer>", TOOLS)
    assert parsed.calls == (ToolCall("answer", {"answer": "Paris"}),)
