"""Stepping envs together gives exactly the episodes of stepping them one by one."""

import json
import threading

import gymnasium as gym
import pytest

from toolgym.envs.batch import BatchStepper, step_as_completed, step_batch
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
    with pytest.raises(ValueError, match="threads and in_flight must be >= 1, got 0 and 4"):
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


@pytest.fixture(params=["down", "slow"])
def failing_search(request, make_env, world_passages):
    """Four MultiHopQA envs (reset, seeds 0-3) whose HTTP search server is down or answers after the
    client's timeout, and that server (None when down)."""
    pytest.importorskip("requests", reason="the http backend needs requests (pip install 'toolgym[serve]')")
    srv = CountingServer(world_passages, delay=2.0) if request.param == "slow" else None
    url = srv.url if srv else _closed_port_url()
    try:
        envs = [make_env("MultiHopQA-v0", retriever="http",
                         retriever_options={"url": url, "timeout": 0.3, "retries": 0}) for _ in range(4)]
        for k, env in enumerate(envs):
            env.reset(seed=k)
        yield envs, srv
    finally:
        if srv:
            srv.server.close()


def test_a_failing_or_slow_server_gives_each_episode_its_error(failing_search):
    envs, srv = failing_search
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


# -- as completions arrive ------------------------------------------------------------------------
def arriving(actions: dict, order, pause=0.0):
    """``(index, action)`` in ``order``, as a generation engine returns completions (``pause`` s apart)."""
    import time

    for i in order:
        if pause:
            time.sleep(pause)
        yield i, actions[i]


def play_as_completed(envs, stepper, rng, budget=14):
    """``play`` with each turn's actions arriving in a random order, some after a pause."""
    episodes = [[env.reset(seed=100 + k)] for k, env in enumerate(envs)]
    live = list(range(len(envs)))
    for _ in range(budget):
        if not live:
            break
        actions = {j: scripted(envs[k], k) for j, k in enumerate(live)}
        order = [int(j) for j in rng.permutation(len(live))]
        outs = stepper.step_as_completed([envs[k] for k in live], arriving(actions, order, float(rng.choice([0, 0.002]))))
        for j, (k, out) in enumerate(zip(live, outs)):
            episodes[k].append((actions[j], *out))
        live = [k for k, out in zip(live, outs) if not (out[2] or out[3])]
    return episodes


@pytest.mark.parametrize("env_id", env_ids())
def test_episodes_stepped_as_actions_arrive_equal_serial_ones(env_id, make_env):
    import numpy as np

    serial = [make_env(env_id) for _ in range(N_ENVS)]
    streamed = [make_env(env_id) for _ in range(N_ENVS)]
    want = play(serial)
    with BatchStepper(threads=4) as stepper:
        for seed in range(2):  # two random arrival schedules
            assert play_as_completed(streamed, stepper, np.random.default_rng(seed)) == want


@pytest.mark.parametrize("env_id", ["MultiHopQA-v0", "SQLQuery-v0"])
def test_as_completed_with_worker_processes_gives_the_same_episodes(env_id, make_env):
    import numpy as np

    serial = [make_env(env_id) for _ in range(3)]
    streamed = [make_env(env_id) for _ in range(3)]
    with BatchStepper(threads=2, processes=1) as stepper:
        got = play_as_completed(streamed, stepper, np.random.default_rng(0), budget=4)
    assert got == play(serial, budget=4)


def test_as_completed_yields_each_stepped_env_once_and_collects_in_env_order():
    shared = Shared()
    envs = [WordEnv(shared) for _ in range(3)]
    for env in envs:
        env.reset(seed=0)
    actions = {0: call("lookup", word="a"), 1: "no call", 2: call("lookup", word="ccc")}
    with BatchStepper() as stepper:
        seen = [i for i, _ in stepper.iter_as_completed(envs, arriving(actions, [2, 1]))]
        assert sorted(seen) == [1, 2]  # as each stepped; env 0's action never came: it did not step
        assert envs[0].unwrapped.turn == 0
        for env in envs:
            env.reset(seed=0)
        outs = stepper.step_as_completed(envs, arriving(actions, [1, 2, 0]))
    assert [o[4]["turn"] for o in outs] == [1, 1, 1]
    assert outs[2][0][-1]["content"] == "ccc: 3 letters" and outs[0][0][-1]["content"] == "a: 1 letters"
    assert outs[1][4]["parse_error"] == "no tool call found in the message"


def test_micro_batches_one_per_backend_while_one_is_out():
    """Arrivals while a backend's call is out wait for it, then go together as the next micro-batch."""
    import threading

    release = threading.Event()
    sent = []

    class SlowLookup(Lookup):
        concurrency = "thread"

        def run_batch(self, arguments):
            sent.append([a["word"] for a in arguments])
            if len(sent) == 1:
                release.wait(5)  # the first micro-batch is out until every other action has arrived
            return super().run_batch(arguments)

    class SlowWordEnv(WordEnv):
        def _make_tools(self):
            return (SlowLookup(self.shared), Answer())

    shared = Shared()
    envs = [SlowWordEnv(shared) for _ in range(5)]
    for env in envs:
        env.reset(seed=0)
    words = ["one", "two", "three", "four", "five"]

    def arrivals():
        yield 0, call("lookup", word=words[0])
        while not sent:  # the first lookup is out
            threading.Event().wait(0.001)
        for i in range(1, 5):
            yield i, call("lookup", word=words[i])
        release.set()

    with BatchStepper() as stepper:
        outs = stepper.step_as_completed(envs, arrivals())
    assert sent == [["one"], ["two", "three", "four", "five"]]
    assert [o[0][-1]["content"] for o in outs] == [f"{w}: {len(w)} letters" for w in words]


def test_bad_arrivals_are_errors_and_an_arrivals_error_is_raised_here():
    envs = [WordEnv(Shared()) for _ in range(2)]
    for env in envs:
        env.reset(seed=0)
    with pytest.raises(ValueError, match="env 1's action arrived twice"):
        step_as_completed(envs, [(1, "x"), (1, "y")])
    with pytest.raises(IndexError, match="names env 5, but there are 2 envs"):
        step_as_completed(envs, [(5, "x")])

    def broken():
        yield 0, "x"
        raise RuntimeError("the generation server went away")

    with pytest.raises(RuntimeError, match="went away"):
        step_as_completed(envs, broken())


def test_as_completed_sends_one_request_per_micro_batch_and_equals_in_process(make_env, world_passages):
    pytest.importorskip("requests", reason="the http backend needs requests (pip install 'toolgym[serve]')")
    srv = CountingServer(world_passages, delay=0.2)
    try:
        remote = [make_env("MultiHopQA-v0", retriever="http", retriever_options={"url": srv.url}) for _ in range(N_ENVS)]
        local = [make_env("MultiHopQA-v0") for _ in range(N_ENVS)]
        for k, env in enumerate(remote + local):
            env.reset(seed=k % N_ENVS)
        actions = {k: env.unwrapped.oracle_action() for k, env in enumerate(remote)}
        assert all('"search"' in a for a in actions.values())

        def arrivals():  # env 3 first; the others while its request is out (the server takes 0.2 s)
            yield 3, actions[3]
            while not srv.requests:
                threading.Event().wait(0.001)
            for k in (5, 0, 4, 1, 2):
                yield k, actions[k]

        with BatchStepper(in_flight=1) as stepper:
            outs = stepper.step_as_completed(remote, arrivals())
        assert outs == [env.step(actions[k]) for k, env in enumerate(local)]
        titles = [env.unwrapped.example.supporting_titles[0] for env in remote]
        assert srv.requests == [[titles[3]], [titles[k] for k in (5, 0, 4, 1, 2)]]

        # Two requests may be out at once (the HTTP client is thread-safe): the second arrival goes
        # at once, the rest wait for one of them.
        for k, env in enumerate(remote):
            env.reset(seed=k)
        srv.requests.clear()

        def two_then_rest():
            for n, k in enumerate((1, 4, 0, 2, 3, 5)):
                yield k, actions[k]
                while n < 2 and len(srv.requests) <= n:  # the first two requests are out
                    threading.Event().wait(0.001)

        with BatchStepper(in_flight=2) as stepper:
            assert stepper.step_as_completed(remote, two_then_rest()) == outs
        assert srv.requests == [[titles[1]], [titles[4]], [titles[k] for k in (0, 2, 3, 5)]]
    finally:
        srv.server.close()


def test_as_completed_a_failing_or_slow_server_gives_each_episode_its_error(failing_search):
    envs, srv = failing_search
    actions = {k: env.unwrapped.call("search", query=f"query {k}") for k, env in enumerate(envs)}
    with BatchStepper(in_flight=1) as stepper:
        outs = stepper.step_as_completed(envs, arriving(actions, [2, 0, 3, 1], pause=0.02))
    for obs, reward, terminated, truncated, info in outs:
        assert info["tool_error"].startswith("search backend failed: RetrievalError:")
        assert obs[-1]["content"] == f"Error: {info['tool_error']}"
        assert not terminated and not truncated and reward == 0.0
    if srv:  # one request out at a time: the others waited for it and went together
        assert [len(r) for r in srv.requests] == [1, 3]
    outs = step_as_completed(envs, arriving({k: env.unwrapped.call("answer", answer="x") for k, env in
                                             enumerate(envs)}, [3, 2, 1, 0]))
    assert all(o[2] for o in outs)
