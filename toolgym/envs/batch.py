"""Stepping many envs together: the tool calls of a turn run as one batch.

``step_batch(envs, actions)`` returns exactly what ``[env.step(a) for env, a in zip(envs, actions)]``
returns (observations, rewards, flags, info, in order), faster:

1. *plan*: each env parses its action and decides which calls it goes through
   (``ToolEnv.plan_step``; nothing changes);
2. *run*: the calls of pure tools (``Tool.pure``: a search, a read-only query) are gathered across
   the batch; calls to batchable tools with the same ``Tool.batch_key`` become one
   ``Tool.run_batch`` call (every env's search over one retriever: one ``search(queries, k)``, one
   request to a retrieval server); the groups run by ``Tool.concurrency``: awaited I/O in a thread
   pool, CPU-bound Python in worker processes (``processes=``), fast tools inline;
3. *apply*: each env steps (``env.step``, through its wrappers) with those results preloaded
   (``ToolEnv.preload``), in order; calls of other tools run there, one by one, as always.

A pure call that an earlier call of its message makes moot (after ``answer`` the step stops) ran for
nothing and is dropped; nothing else differs from stepping one by one.

``step_as_completed(envs, arrivals)`` does the same for actions that arrive one at a time (a
generation engine that returns each completion as it finishes): each env is planned as its action
arrives, its pure calls join the next micro-batch of their backend, which is sent while later
actions still arrive, and each env steps as soon as its results are back.

    from toolgym.envs.batch import step_batch, step_as_completed
    results = step_batch(envs, actions)   # [(obs, reward, terminated, truncated, info), ...]
    results = step_as_completed(envs, ((i, action) for i, action in completions))  # in env order
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from toolgym.envs.errors import check_non_negative, unknown_name_error
from toolgym.envs.tool import Tool, ToolResult
from toolgym.envs.tool_env import ToolEnv

CONCURRENCY = ("thread", "process", "inline")


class BatchStepper:
    """Runs the tool calls of many envs together; see the module docstring.

    Args:
        threads: most calls (or batches) of ``concurrency="thread"`` tools awaited at once.
        processes: worker processes for ``concurrency="process"`` tools (started on first use, with
            ``forkserver``, so forking never copies the threads of the parent); 0 runs those tools inline.
        in_flight: :meth:`iter_as_completed` keeps at most this many micro-batches out at once per
            backend for tools that declare ``thread_safe`` (a server's client), one for other tools.
    """

    def __init__(self, threads: int = 64, processes: int = 0, in_flight: int = 4):
        check_non_negative(threads=threads, processes=processes)
        if threads < 1 or in_flight < 1:
            raise ValueError(f"threads and in_flight must be >= 1, got {threads} and {in_flight}.")
        self.threads, self.processes, self.in_flight = threads, processes, in_flight
        self._thread_pool: ThreadPoolExecutor | None = None
        self._process_pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- the phases ---------------------------------------------------------------------------
    def step(self, envs: Sequence[Any], actions: Sequence[Any]) -> list[tuple]:
        """``[env.step(a) for env, a in zip(envs, actions)]``, with the tool calls run together."""
        if len(envs) != len(actions):
            raise ValueError(f"{len(envs)} envs but {len(actions)} actions; give one action per env.")
        self.run_ahead(envs, actions)
        return [env.step(action) for env, action in zip(envs, actions)]

    def run_ahead(self, envs: Sequence[Any], actions: Sequence[Any]) -> None:
        """Plan each env's step and run its pure calls as one batch; the next ``env.step(action)``
        of each env uses those results. For callers that step the envs themselves."""
        if len(envs) != len(actions):
            raise ValueError(f"{len(envs)} envs but {len(actions)} actions; give one action per env.")
        plans, requests = [], []
        for env, action in zip(envs, actions):
            base = getattr(env, "unwrapped", env)
            if not isinstance(base, ToolEnv):
                continue  # any other Gymnasium env simply steps
            plan = base.plan_step(action)
            ahead = plan.ahead()
            if ahead:
                plans.append((base, plan, ahead))
                for n in ahead:
                    requests.append((plan.calls[n].tool, plan.calls[n].call.arguments))
        if not requests:
            return
        results = iter(self.run_calls(requests))
        for base, plan, ahead in plans:
            base.preload(plan, {n: next(results) for n in ahead})

    def run_calls(self, requests: Sequence[tuple[Tool, Any]]) -> list[ToolResult]:
        """``[tool(arguments) for tool, arguments in requests]``, batched and concurrent: calls to
        tools with the same ``batch_key`` form one group (one ``call_batch``, in order), and the
        groups run by their tool's ``concurrency``."""
        groups: dict[Any, list[int]] = {}
        for i, (tool, _) in enumerate(requests):
            key = tool.batch_key() if tool.batchable else (type(tool), id(tool))  # a plain tool runs its own calls
            groups.setdefault(key, []).append(i)
        tasks = []  # (representative tool, request indices)
        for members in groups.values():
            tasks.append((requests[members[0]][0], members))
        results: list[ToolResult | None] = [None] * len(requests)

        def deliver(members: list[int], out: list[ToolResult]) -> None:
            for i, result in zip(members, out, strict=True):
                results[i] = result

        inline, threaded, in_processes = [], [], []
        for tool, members in tasks:
            pool = self._pool_for(tool.concurrency) if len(tasks) > 1 else None
            where = inline if pool is None else threaded if pool is self._thread_pool else in_processes
            where.append((tool, members, [requests[i][1] for i in members]))
        pending: list[tuple[list, Future]] = [([task], self._thread_pool.submit(_run_groups, [task])) for task in threaded]
        if in_processes:  # one submission per worker, not per tool: each costs a round trip and a pickle
            n = min(self.processes, len(in_processes))
            for chunk in (in_processes[j::n] for j in range(n)):
                pending.append((chunk, self._process_pool.submit(_run_groups, [(t, None, a) for t, _, a in chunk])))
        for tool, members, arguments in inline:  # while the pools work
            deliver(members, tool.call_batch(arguments))
        for chunk, future in pending:
            try:
                outs = future.result()
            except Exception:  # noqa: BLE001 - the pool failed (a tool that does not pickle, a dead
                # worker), not the tool (call_batch never raises): run it here; results stay the same.
                outs = _run_groups(chunk)
            for (_, members, _), out in zip(chunk, outs, strict=True):
                deliver(members, out)
        return results  # type: ignore[return-value]

    def step_as_completed(self, envs: Sequence[Any], arrivals: Iterable[tuple[int, Any]]) -> list[tuple | None]:
        """Step ``envs[i]`` with ``action`` as each ``(i, action)`` of ``arrivals`` comes (see
        :meth:`iter_as_completed`); the outputs in env order, None for an env whose action never came."""
        outs: list[tuple | None] = [None] * len(envs)
        for i, out in self.iter_as_completed(envs, arrivals):
            outs[i] = out
        return outs

    def iter_as_completed(self, envs: Sequence[Any], arrivals: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, tuple]]:
        """Yield ``(i, envs[i].step(action))`` for each ``(i, action)`` of ``arrivals``, stepping envs
        while later actions still arrive; each env at most once.

        ``arrivals`` is read in a background thread, in the order actions complete (a generation
        engine's as-completed stream). An env is planned when its action arrives; the pure calls of
        the envs that arrived while a backend's previous micro-batch was out go to it as the next
        micro-batch (one ``run_batch`` per ``batch_key``), in a pool unless the tool is ``"inline"``
        (then in this thread, between steps). A backend has one micro-batch out at a time (so one
        tool object is never called from two threads at once), or up to ``in_flight`` for tools that
        declare ``thread_safe``. An env steps (in this thread, through its wrappers) as soon as its
        results are back, so the outputs come in about completion order, each equal to what
        ``envs[i].step(action)`` alone returns. An exception of ``arrivals`` is raised here.
        """
        events: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=_feed, args=(arrivals, events), name="toolgym-arrivals", daemon=True).start()
        seen: set[int] = set()
        waiting: dict[int, list] = {}  # env index -> [action, plan, results by call position, calls left]
        queued: dict[Any, list[tuple]] = {}  # batch key -> [(env index, call position, tool, arguments)]
        out: dict[Any, int] = {}  # batch key -> micro-batches out
        ready: deque[int] = deque()  # envs whose results are all back (or that need none)
        plain: dict[int, Any] = {}  # envs that step with no call run ahead -> their action
        ended = False

        def deliver(members: list[tuple[int, int]], results: list[ToolResult]) -> None:
            for (i, n), result in zip(members, results, strict=True):
                entry = waiting[i]
                entry[2][n] = result
                entry[3] -= 1
                if entry[3] == 0:
                    ready.append(i)

        def handle(event: tuple) -> None:
            nonlocal ended
            kind = event[0]
            if kind == "end":
                ended = True
            elif kind == "error":
                raise event[1]
            elif kind == "done":
                _, key, tool, members, arguments, future = event
                out[key] -= 1
                try:
                    results = future.result()[0]
                except Exception:  # noqa: BLE001 - the pool failed, not the tool: run it here
                    results = tool.call_batch(arguments)
                deliver(members, results)
            else:
                _, i, action = event
                if not isinstance(i, int) or not 0 <= i < len(envs):
                    raise IndexError(f"an arrival names env {i!r}, but there are {len(envs)} envs (indices 0-{len(envs) - 1}).")
                if i in seen:
                    raise ValueError(f"env {i}'s action arrived twice; each env steps at most once per call.")
                seen.add(i)
                base = getattr(envs[i], "unwrapped", envs[i])
                plan = base.plan_step(action) if isinstance(base, ToolEnv) else None
                ahead = plan.ahead() if plan is not None else []
                if not ahead:
                    plain[i] = action
                    ready.append(i)
                    return
                waiting[i] = [action, plan, {}, len(ahead)]
                for n in ahead:
                    tool = plan.calls[n].tool
                    key = tool.batch_key() if tool.batchable else (type(tool), id(tool))
                    queued.setdefault(key, []).append((i, n, tool, plan.calls[n].call.arguments))

        def dispatch() -> None:
            for key in list(queued):
                tool = queued[key][0][2]
                if out.get(key, 0) >= (self.in_flight if tool.thread_safe else 1):
                    continue  # these wait for a micro-batch of their backend to come back
                calls = queued.pop(key)
                members, arguments = [(c[0], c[1]) for c in calls], [c[3] for c in calls]
                pool = self._pool_for(tool.concurrency)
                if pool is None:
                    deliver(members, tool.call_batch(arguments))
                    continue
                out[key] = out.get(key, 0) + 1
                future = pool.submit(_run_groups, [(tool, None, arguments)])
                future.add_done_callback(
                    lambda f, key=key, tool=tool, members=members, arguments=arguments:
                    events.put(("done", key, tool, members, arguments, f)))

        while not (ended and not waiting and not ready):
            try:  # wait only when nothing is ready to step; otherwise take what has come meanwhile
                event = events.get_nowait() if ready else events.get()
                while True:
                    handle(event)
                    event = events.get_nowait()
            except queue.Empty:
                pass
            dispatch()
            if ready:
                i = ready.popleft()
                if i in plain:
                    action = plain.pop(i)
                else:
                    action, plan, results, _ = waiting.pop(i)
                    getattr(envs[i], "unwrapped", envs[i]).preload(plan, results)
                yield i, envs[i].step(action)

    # -- pools --------------------------------------------------------------------------------
    def _pool_for(self, concurrency: str) -> Executor | None:
        if concurrency not in CONCURRENCY:
            raise unknown_name_error("tool concurrency", concurrency, CONCURRENCY)
        with self._lock:
            if concurrency == "thread":
                if self._thread_pool is None:
                    self._thread_pool = ThreadPoolExecutor(self.threads, thread_name_prefix="toolgym-tools")
                return self._thread_pool
            if concurrency == "process" and self.processes > 0:
                if self._process_pool is None:
                    methods = multiprocessing.get_all_start_methods()
                    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
                    self._process_pool = ProcessPoolExecutor(self.processes, mp_context=context)
                return self._process_pool
        return None

    def close(self) -> None:
        """Stop the pools (a stepper can be used again: they restart on demand)."""
        with self._lock:
            pools, self._thread_pool, self._process_pool = (self._thread_pool, self._process_pool), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> BatchStepper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _feed(arrivals: Iterable[tuple[int, Any]], events: queue.SimpleQueue) -> None:
    """Read ``arrivals`` into ``events`` (in a thread: the stepping thread works meanwhile)."""
    try:
        for i, action in arrivals:
            events.put(("arrival", i, action))
    except BaseException as err:  # noqa: BLE001 - handed to the stepping thread, which raises it
        events.put(("error", err))
    else:
        events.put(("end",))


def _run_groups(groups: list[tuple[Tool, Any, list[Any]]]) -> list[list[ToolResult]]:
    """Each group's results, in order (runs in a pool thread or a worker process)."""
    return [tool.call_batch(arguments) for tool, _, arguments in groups]


_DEFAULT: BatchStepper | None = None


def default_stepper() -> BatchStepper:
    """The process-wide stepper of ``step_batch``/``run_ahead`` (threads only, no worker processes)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = BatchStepper()
    return _DEFAULT


def step_batch(envs: Sequence[Any], actions: Sequence[Any], stepper: BatchStepper | None = None) -> list[tuple]:
    """``[env.step(a) for env, a in zip(envs, actions)]`` with the tool calls run together."""
    return (stepper or default_stepper()).step(envs, actions)


def step_as_completed(envs: Sequence[Any], arrivals: Iterable[tuple[int, Any]],
                      stepper: BatchStepper | None = None) -> list[tuple | None]:
    """Step each env as its ``(index, action)`` arrives, the tool calls of what has arrived together;
    the outputs in env order (None: no action came). See :meth:`BatchStepper.iter_as_completed`."""
    return (stepper or default_stepper()).step_as_completed(envs, arrivals)


def iter_as_completed(envs: Sequence[Any], arrivals: Iterable[tuple[int, Any]],
                      stepper: BatchStepper | None = None) -> Iterator[tuple[int, tuple]]:
    """``(index, step output)`` as each env steps, its ``(index, action)`` having arrived; see
    :meth:`BatchStepper.iter_as_completed`."""
    return (stepper or default_stepper()).iter_as_completed(envs, arrivals)


def run_ahead(envs: Sequence[Any], actions: Sequence[Any], stepper: BatchStepper | None = None) -> None:
    """Run the pure tool calls of ``env.step(action)`` for every env as one batch, before the steps."""
    (stepper or default_stepper()).run_ahead(envs, actions)
