"""Stepping envs together gives exactly the episodes of stepping them one by one."""

import json

import gymnasium as gym
import pytest

from toolgym.envs.batch import BatchStepper, step_batch
from toolgym.envs.registration import env_ids
from toolgym.envs.result import EpisodeResult
from toolgym.envs.tool import Tool, ToolResult
from toolgym.envs.tool_env import ToolEnv

N_ENVS = 6


def scripted(env, k: int) -> str:
    """Episode ``k``'s action now: the oracle's, and malformed or odd ones, on a fixed schedule."""
    base = env.unwrapped
    oracle = base.oracle_action()
    first = base.tools[0].name
    kinds = [
        oracle,
        "I am not sure what to do.",
        '<tool_call>{"name": "serch", "arguments": {"query": "x"}}</tool_call>',
        "<tool_call>{not json</tool_call>",
        oracle + oracle,
        base.call(first, bogus=1) + oracle,
        base.call("answer", answer="a guess") + oracle + oracle if "answer" in base._tools_by_name else oracle,
        oracle * 5,  # more calls than one message may run
        oracle,
    ]
    return kinds[(k + base.turn * 3) % len(kinds)]


def play(envs, stepper=None, budget=14):
    """Each env's episode as (reset output, then every step's output), stepped serially or batched."""
    episodes = [[env.reset(seed=100 + k)] for k, env in enumerate(envs)]
    live = list(range(len(envs)))
    for _ in range(budget):
        if not live:
            break
        actions = [scripted(envs[k], k) for k in live]
        if stepper is None:
            outs = [envs[k].step(a) for k, a in zip(live, actions)]
        else:
            outs = stepper.step([envs[k] for k in live], actions)
        for k, action, out in zip(live, actions, outs):
            episodes[k].append((action, *out))
        live = [k for k, out in zip(live, outs) if not (out[2] or out[3])]
    return episodes


@pytest.mark.parametrize("env_id", env_ids())
@pytest.mark.parametrize("budgets", [{}, {"max_tool_calls": 3}])
def test_batched_episodes_equal_serial_ones(env_id, budgets, make_env):
    serial = [make_env(env_id, **budgets) for _ in range(N_ENVS)]
    batched = [make_env(env_id, **budgets) for _ in range(N_ENVS)]
    with BatchStepper(threads=4) as stepper:
        got = play(batched, stepper)
    want = play(serial)
    assert got == want
    # The schedule covered endings, malformed actions and multi-call messages.
    assert any(step[3] for ep in want for step in ep[1:])  # someone terminated
    assert any(step[5]["parse_error"] for ep in want for step in ep[1:])


@pytest.mark.parametrize("env_id", ["MultiHopQA-v0", "SQLQuery-v0"])
def test_worker_processes_give_the_same_episodes(env_id, make_env):
    serial = [make_env(env_id) for _ in range(3)]
    batched = [make_env(env_id) for _ in range(3)]
    with BatchStepper(threads=2, processes=1) as stepper:
        got = play(batched, stepper, budget=4)
    assert got == play(serial, budget=4)


# -- on a tool that counts its calls --------------------------------------------------------------
class Shared:
    def __init__(self):
        self.batches = []


class Lookup(Tool):
    name, description = "lookup", "Look a word up."
    parameters = {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}
    timeout = None
    pure = True

    def __init__(self, shared):
        self.shared = shared

    def run(self, word):
        self.shared.batches.append([word])
        return ToolResult(f"{word}: {len(word)} letters", metadata={"n": len(word)})

    def batch_key(self):
        return ("lookup", id(self.shared))

    def run_batch(self, arguments):
        words = [a["word"] for a in arguments]
        self.shared.batches.append(words)
        if "boom" in words:
            raise RuntimeError("the dictionary is down")
        return [ToolResult(f"{w}: {len(w)} letters", metadata={"n": len(w)}) for w in words]


class Answer(Tool):
    name, description = "answer", "Final answer."
    parameters = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    timeout, pure = None, True

    def run(self, answer):
        return ToolResult("ok", metadata={"answer": answer})


class WordEnv(ToolEnv):
    default_reward_weights = {**ToolEnv.default_reward_weights, "letters": 0.01}

    def __init__(self, shared, **kwargs):
        self.shared = shared
        super().__init__(**kwargs)

    def _make_tools(self):
        return (Lookup(self.shared), Answer())

    def _instructions(self):
        return "Look words up."

    def _new_task(self, options):
        return "Go."

    def _on_result(self, call, result, terms):
        if call.name == "answer":
            return True
        if result.ok:
            terms.add("letters", result.metadata["n"])
        return False

    def _episode_result(self):
        return EpisodeResult(success=False, score=0.0)


def call(name, **arguments):
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def test_one_batch_per_turn_and_dropped_calls_after_an_answer():
    shared = Shared()
    envs = [WordEnv(shared) for _ in range(4)]
    for env in envs:
        env.reset(seed=0)
    actions = [call("lookup", word="cat"), call("lookup", word="horse") + call("lookup", word="ox"),
               call("answer", answer="x") + call("lookup", word="never"), "no call"]
    outs = step_batch(envs, actions)
    assert shared.batches == [["cat", "horse", "ox", "never"]]  # one call for the whole turn
    assert [o[4]["tool_calls"] for o in outs] == [1, 2, 0, 0]  # the moot lookup is not counted
    assert outs[2][2] is True and outs[2][0][-1]["content"] == "ok"  # the moot lookup is not shown
    assert outs[1][1] == pytest.approx(2 * 0.02 + 0.01 * 7)


def test_a_failing_batch_fails_each_call_and_bad_arguments_fail_alone():
    shared = Shared()
    envs = [WordEnv(shared) for _ in range(3)]
    for env in envs:
        env.reset(seed=0)
    outs = step_batch(envs, [call("lookup", word="boom"), call("lookup", word="fine"), call("lookup", wurd="x")])
    assert outs[0][4]["tool_error"] == outs[1][4]["tool_error"] == "lookup failed: RuntimeError: the dictionary is down"
    assert "missing required argument 'word'" in outs[2][4]["tool_error"]
    assert shared.batches == [["boom", "fine"]]


def test_preloaded_results_are_used_once_and_only_for_their_action():
    shared = Shared()
    env = WordEnv(shared)
    env.reset(seed=0)
    action = call("lookup", word="cat")
    BatchStepper().run_ahead([env], [action])
    env.step(call("lookup", word="dog"))  # another action: the preloaded result is dropped, dog runs
    env.step(action)  # the preload was discarded by the step before: cat runs again
    assert shared.batches == [["cat"], ["dog"], ["cat"]]


def test_threads_run_calls_of_several_tools_and_match_serial():
    serial_shared, batched_shared = Shared(), Shared()
    serial = [WordEnv(serial_shared) for _ in range(5)]
    batched = [WordEnv(batched_shared) for _ in range(5)]
    for env in batched:  # each its own group: no shared batch key, run in the thread pool
        env.tools[0].batch_key = lambda tool=env.tools[0]: id(tool)
        env.tools[0].concurrency = "thread"
    actions = [call("lookup", word="w" * (k + 1)) + call("lookup", word="v") for k in range(5)]
    for env in serial + batched:
        env.reset(seed=1)
    with BatchStepper(threads=3) as stepper:
        got = stepper.step(batched, actions)
    assert got == [env.step(a) for env, a in zip(serial, actions)]
    assert len(batched_shared.batches) == 5


def test_other_gymnasium_envs_just_step():
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    ((obs, reward, *_),) = step_batch([env], [0])
    assert reward == 1.0 and obs.shape == (4,)


def test_mismatched_lengths_and_bad_settings_are_errors():
    with pytest.raises(ValueError, match="2 envs but 1 actions"):
        step_batch([WordEnv(Shared()), WordEnv(Shared())], ["x"])
    with pytest.raises(ValueError, match="threads must be >= 1"):
        BatchStepper(threads=0)


# -- over a retrieval server -------------------------------------------------------------------------
class CountingServer:
    """A ``/retrieve`` server on loopback over the small world's passages that counts its searches."""

    def __init__(self, passages, delay=0.0):
        import time

        from toolgym.envs.retrieval import BM25Retriever
        from toolgym.envs.retrieval.server import RetrievalServer

        counter = self

        class Server(RetrievalServer):
            def handle_error(self, request, client_address):
                pass  # the slow server answers after the client gave up: a broken pipe, expected

            def search(self, queries, k):
                counter.requests.append(list(queries))
                time.sleep(delay)
                return super().search(queries, k)

        self.requests = []
        self.server = Server(BM25Retriever(passages, cache=False), "127.0.0.1", 0, backend="bm25")
        self.server.start_in_thread()
        self.url = self.server.url


@pytest.fixture
def world_passages(make_env):
    return make_env("MultiHopQA-v0").unwrapped.passages


@pytest.fixture
def counting_server(world_passages):
    pytest.importorskip("requests", reason="the http backend needs requests (pip install 'toolgym[serve]')")
    srv = CountingServer(world_passages)
    yield srv
    srv.server.close()


def test_one_request_per_turn_for_the_batch_and_episodes_equal_in_process(make_env, counting_server):
    remote = [make_env("MultiHopQA-v0", retriever="http", retriever_options={"url": counting_server.url})
              for _ in range(N_ENVS)]
    local = [make_env("MultiHopQA-v0") for _ in range(N_ENVS)]
    for k, env in enumerate(remote + local):
        env.reset(seed=k % N_ENVS)
    turns = 0
    while remote:
        actions = [env.unwrapped.oracle_action() for env in remote]
        searching = sum('"search"' in a for a in actions)
        before = len(counting_server.requests)
        outs = step_batch(remote, actions)
        assert outs == [env.step(a) for env, a in zip(local, actions)]
        assert len(counting_server.requests) - before == (1 if searching else 0)
        if searching:
            assert len(counting_server.requests[-1]) == searching  # every env's query in that one request
        keep = [not (o[2] or o[3]) for o in outs]
        remote = [e for e, k in zip(remote, keep) if k]
        local = [e for e, k in zip(local, keep) if k]
        turns += 1
    assert turns >= 3 and all(len(r) > 1 for r in counting_server.requests)


def test_serial_steps_send_one_request_per_search(make_env, counting_server):
    envs = [make_env("MultiHopQA-v0", retriever="http", retriever_options={"url": counting_server.url})
            for _ in range(3)]
    for env in envs:
        env.reset(seed=0)
        env.step(env.unwrapped.oracle_action())
    assert counting_server.requests == [[envs[0].unwrapped.example.supporting_titles[0]]] * 3


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/retrieve"


@pytest.mark.parametrize("failure", ["down", "slow"])
def test_a_failing_or_slow_server_gives_each_episode_its_error(failure, make_env, world_passages):
    pytest.importorskip("requests", reason="the http backend needs requests (pip install 'toolgym[serve]')")
    srv = CountingServer(world_passages, delay=2.0) if failure == "slow" else None
    url = srv.url if srv else _closed_port_url()
    try:
        envs = [make_env("MultiHopQA-v0", retriever="http",
                         retriever_options={"url": url, "timeout": 0.3, "retries": 0}) for _ in range(4)]
        for k, env in enumerate(envs):
            env.reset(seed=k)
        outs = step_batch(envs, [env.unwrapped.call("search", query=f"query {k}") for k, env in enumerate(envs)])
        for obs, reward, terminated, truncated, info in outs:
            assert info["tool_error"].startswith("search backend failed: RetrievalError:")
            assert obs[-1]["content"] == f"Error: {info['tool_error']}"
            assert not terminated and not truncated
            assert reward == 0.0  # a call that failed earns no valid_call; the episode goes on
        if srv:
            assert len(srv.requests) == 1  # the batch waited for one request, not one per episode
        # The episodes go on: the next turn answers.
        outs = step_batch(envs, [env.unwrapped.call("answer", answer="x") for env in envs])
        assert all(o[2] for o in outs)
    finally:
        if srv:
            srv.server.close()
