"""``toolgym view`` on real bench records, checked in headless Chromium as a person sees the page:
how many episodes it shows, a filter that narrows them, one conversation with its tool call and
reward terms, two episodes side by side. Skipped, with the reason, where no Chromium exists."""

from __future__ import annotations

import json
import re

import pytest

from toolgym.benchmarks.runner import BenchConfig, run_benchmark
from toolgym.viewer.browser import MISSING, dump_dom, find_chromium
from toolgym.viewer.page import page_data, read_records, write_page

browser = pytest.mark.skipif(find_chromium() is None, reason=MISSING)
SMALL_WORLD = {"MultiHopQA-v0:world": {"n_people": 60}}


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    for agent in ("oracle", "random"):
        run_benchmark(BenchConfig(agent=agent, envs=["MultiHopQA-v0", "ToolMath-v0"], n=4, out=str(out),
                                  env_kwargs=SMALL_WORLD, progress=False, reports=False))
    return out


@pytest.fixture(scope="module")
def page(bench_dir):
    path, n = write_page(bench_dir)
    assert n == 16 and path == bench_dir / "episodes.html"
    return path


@pytest.fixture(scope="module")
def records(bench_dir):
    return read_records(bench_dir / "episodes.jsonl")


def shown(dom: str) -> tuple[int, int]:
    m = re.search(r'id="count"[^>]*data-shown="(\d+)"[^>]*data-total="(\d+)"', dom)
    assert m, "the page shows no episode count"
    return int(m.group(1)), int(m.group(2))


def articles(dom: str) -> list[str]:
    return re.findall(r'<article class="episode" data-i="(\d+)">', dom)


def test_the_page_is_self_contained(page, records):
    html = page.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)  # nothing fetched: it opens offline
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    system = records[0]["first"][0]["content"]
    assert html.count(json.dumps(system, ensure_ascii=False)[1:-1][:200]) == 1  # the shared prompt is stored once


@browser
def test_the_page_shows_every_episode_and_a_conversation_at_once(page):
    dom = dump_dom(page)
    assert shown(dom) == (16, 16)
    assert "16 of 16 episodes" in dom
    assert 1 <= dom.count('class="row') <= 16
    assert len(articles(dom)) == 1  # the first episode is open


@browser
@pytest.mark.parametrize("fragment", ["env=ToolMath-v0", "agent=random&success=0", "status=terminated&success=1"])
def test_filters_narrow_the_table(page, records, fragment):
    want = dict(p.split("=") for p in fragment.split("&"))
    expected = [r for r in records if all(
        str(int(r["success"])) == v if k == "success" else r[k] == v for k, v in want.items())]
    assert 0 < len(expected) < len(records)
    assert shown(dump_dom(page, fragment)) == (len(expected), len(records))


@pytest.mark.slow
@browser
def test_text_search_finds_words_of_questions_and_of_tool_results(page, records):
    question = records[0]["first"][-1]["content"]
    name = re.findall(r"[A-Z][a-z]{3,} [A-Z][a-z]{3,}", question)[0]
    in_question = [r for r in records if name.lower() in r["first"][-1]["content"].lower()]
    assert shown(dump_dom(page, f"q={name}"))[0] >= len(in_question) >= 1
    passage = records[0]["steps"][0]["added"][0]["content"]  # a tool result of an oracle search
    word = max(re.findall(r"[A-Z][a-z]{5,}", passage), key=len)
    everywhere = [r for r in records if word.lower() in json.dumps(r, ensure_ascii=False).lower()]
    assert shown(dump_dom(page, f"q={word}"))[0] == len(everywhere)
    assert shown(dump_dom(page, "q=zzzz-nothing-like-it")) == (0, len(records))


@browser
def test_an_episode_shows_its_tool_calls_reward_terms_and_answer(page, records):
    i = next(k for k, r in enumerate(records) if r["agent"] == "oracle" and r["env"] == "MultiHopQA-v0")
    record = records[i]
    dom = dump_dom(page, f"open={i}")
    assert articles(dom) == [str(i)]
    call = record["steps"][0]["calls"][0]
    assert f'<code class="call">{call["name"]}({json.dumps(call["arguments"], separators=(",", ":"))})</code>' in dom
    for name, value in record["steps"][0]["terms"].items():
        if value:
            assert f"{name} {'+' if value > 0 else ''}{value:.3f}" in dom
    assert f"<b>answer</b><span>{record['prediction']}</span>" in dom
    assert f"<b>gold</b><span>{record['gold']}</span>" in dom
    assert dom.count('class="msg assistant"') == len(record["steps"])


@browser
def test_two_agents_side_by_side_on_one_question(page, records):
    i = next(k for k, r in enumerate(records) if r["agent"] == "oracle")
    j = next(k for k, r in enumerate(records) if r["agent"] == "random" and r["env"] == records[i]["env"]
             and r["index"] == records[i]["index"])
    dom = dump_dom(page, f"open={i}&cmp={j}")
    assert articles(dom) == [str(i), str(j)]
    assert dom.count(records[i]["first"][-1]["content"]) >= 2  # the same question in both


@browser
def test_only_the_rows_in_view_are_built(tmp_path, records):
    many = [{**r, "index": k} for k in range(150) for r in records[:20]]  # 2,400 episodes
    source = tmp_path / "episodes.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in many))
    path, n = write_page(source)
    dom = dump_dom(path)
    assert shown(dom) == (n, n) == (2400, 2400)
    assert dom.count('class="row') < 100


def test_a_record_cut_short_is_dropped(tmp_path, records):
    source = tmp_path / "episodes.jsonl"
    source.write_text(json.dumps(records[0]) + "\n" + json.dumps(records[1])[:50])
    assert len(read_records(source)) == 1


def test_long_repeated_texts_are_stored_once(records):
    data = page_data(records, title="t")
    system = records[0]["first"][0]["content"]
    assert data["strings"].count(system) == 1
    ref = data["strings"].index(system)
    same = [ep for ep, r in zip(data["episodes"], records, strict=True) if r["first"][0]["content"] == system]
    assert len(same) > 1 and all(ep["first"][0]["content"] == ref for ep in same)


def test_view_command_writes_the_page(bench_dir, tmp_path, capsys):
    from toolgym.cli import main

    out = tmp_path / "v.html"
    assert main(["view", str(bench_dir), "--out", str(out)]) == 0
    assert "16 episodes" in capsys.readouterr().out and out.stat().st_size > 1000
    assert main(["view", str(tmp_path / "nothing")]) == 2
