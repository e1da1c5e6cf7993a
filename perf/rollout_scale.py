"""Env time per rollout turn at GPU batch sizes: a turn's tool calls stepped together vs one by one.

A generation stand-in (a fixed latency per turn, as vLLM takes for a whole batch) writes the
oracle's action for every live episode; the envs then step either one by one (``env.step`` in a
loop: the path before batching) or together (``toolgym.envs.batch``: what ``RolloutEngine`` and the
bench runner do). Backends: HotpotQA-v0 over the shared dev sample's pooled corpus with BM25
in-process, over HTTP (a ``toolgym serve-retriever`` server in its own process on loopback, as it
runs in real use: another process or machine, never competing with the envs for the GIL), and over
HTTP with a delay injected into each server request (a dense retriever, another machine);
and SQLQuery-v0, inline and in worker processes. The oracle searches in the first turns, so every
step of a measured turn makes one call. Prints Markdown tables: serial against batched, batched
steps against one request of their queries, (``--tables breakdown``) where a batched turn's
CPU goes, in process and over HTTP, and (``--tables overlap``) a lock-step turn against one whose
completions stream in: the generation stand-in returns the turn's completions spread evenly over
its latency, in a random order (completion k of n at ``latency * k / n``, as an engine that returns
each request when it finishes), and each env steps as its completion arrives
(``BatchStepper.step_as_completed``); there the env's share of a turn is the exposed env time (from
the last completion until every env has stepped) over the whole turn.

    python perf/rollout_scale.py [--batches 64,256,1024] [--latency 0.3] [--turns 2] [--delays 5,20] [--repeats 3]
    python perf/rollout_scale.py --tables overlap --delays 20
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import time
from pathlib import Path

import gymnasium as gym

import toolgym  # noqa: F401 - registers the ids
from toolgym.envs.batch import BatchStepper
from toolgym.envs.retrieval import BM25Retriever
from toolgym.envs.retrieval.http import HTTPRetriever
from toolgym.envs.retrieval.server import RetrievalServer, hit_document

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "hotpotqa_dev_distractor.sample.json"


class DelayedServer(RetrievalServer):
    """A retrieval server that waits ``delay`` seconds per request before searching."""

    def __init__(self, *args, delay: float = 0.0, **kwargs):
        self.delay = delay
        super().__init__(*args, **kwargs)

    def search(self, queries, k):
        if self.delay:
            time.sleep(self.delay)
        return super().search(queries, k)


def _serve(data: str, delay: float, conn) -> None:
    """A child process: serve BM25 over the corpus of ``data`` (injecting ``delay`` per request)
    and send the URL back through ``conn``; runs until terminated."""
    passages = gym.make("HotpotQA-v0", data_files=data).unwrapped.passages
    srv = DelayedServer(BM25Retriever(passages, cache=False), "127.0.0.1", 0, backend="bm25", delay=delay)
    conn.send(srv.url)
    conn.close()
    srv.serve_forever(0.05)


class ServerProcess:
    """A retrieval server in its own process (``spawn``: a fresh interpreter, as ``toolgym
    serve-retriever`` would be); ``url`` once it listens, ``close()`` stops it."""

    def __init__(self, data: str, delay: float):
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        self.process = context.Process(target=_serve, args=(data, delay, child), daemon=True)
        self.process.start()
        child.close()
        if not parent.poll(300):
            self.close()
            raise RuntimeError(f"the retrieval server process (delay {delay * 1000:g} ms) did not start within 300 s")
        self.url = parent.recv()
        client = HTTPRetriever(self.url)
        client.wait_until_ready()
        client.close()

    def close(self) -> None:
        self.process.terminate()
        self.process.join(10)


def warm_up(envs) -> None:
    """Two steps of each env before it is measured: Gymnasium's checker inspects an env's first
    two steps (``make`` wraps every env in it), which no rollout pays for again."""
    for env in envs:
        env.reset(seed=0)
        env.step("warm-up")
        env.step("warm-up")


class StandIn:
    """Generation with a fixed latency per turn: the oracle's action for each live episode."""

    def __init__(self, latency: float):
        self.latency = latency

    def generate(self, envs):
        time.sleep(self.latency)
        return [env.unwrapped.oracle_action() for env in envs]


class StreamingStandIn(StandIn):
    """The same turn, but each completion is returned when it finishes: completion k of n at
    ``latency * k / n`` after the turn starts, episodes in a random (seeded) order."""

    def __init__(self, latency: float, seed: int = 0):
        super().__init__(latency)
        self.rng = random.Random(seed)

    def arrivals(self, envs, start: float, last: list):
        """``(index, action)`` as each completion finishes; ``last[0]``: when the last one came."""
        actions = [env.unwrapped.oracle_action() for env in envs]
        order = list(range(len(envs)))
        self.rng.shuffle(order)
        for k, i in enumerate(order, start=1):
            wait = start + self.latency * k / len(order) - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            last[0] = time.perf_counter()
            yield i, actions[i]


def run_streaming(envs, stepper: BatchStepper, generator: StreamingStandIn, turns: int):
    """Per measured turn, as :func:`run`, with completions streaming in: the exposed env seconds
    (from the last completion until every env has stepped), the turn's seconds, this process's CPU
    seconds over the whole turn, and the micro-batches (search requests) the turn sent."""
    for i, env in enumerate(envs):
        env.reset(seed=i, options={"index": i})
    retriever = envs[0].unwrapped.search_tool.retriever
    sent = [0]
    search = retriever.search

    def counted(queries, k):
        sent[0] += 1
        return search(queries, k)

    retriever.search = counted  # every env of the batch shares this client
    exposed_s, turn_s, cpu_s, requests = [], [], [], []
    live = list(envs)
    try:
        for _ in range(turns):
            sent[0], last = 0, [0.0]
            t0, c0 = time.perf_counter(), time.process_time()
            outs = stepper.step_as_completed(live, generator.arrivals(live, t0, last))
            t2, c2 = time.perf_counter(), time.process_time()
            exposed_s.append(t2 - last[0])
            turn_s.append(t2 - t0)
            cpu_s.append(c2 - c0)
            requests.append(sent[0])
            live = [env for env, out in zip(live, outs) if not (out[2] or out[3])]
            if not live:
                break
    finally:
        del retriever.search
    return exposed_s, turn_s, cpu_s, requests


def run(envs, stepper: BatchStepper | None, generator: StandIn, turns: int):
    """Per measured turn: seconds stepping the envs (this process's wall time), seconds of the
    whole turn (wall), and CPU seconds of this process while stepping (every thread: the in-process
    retriever's too, never a server process's)."""
    for i, env in enumerate(envs):
        env.reset(seed=i, options={"index": i})
    env_s, turn_s, cpu_s = [], [], []
    live = list(envs)
    for _ in range(turns):
        t0 = time.perf_counter()
        actions = generator.generate(live)
        t1, c1 = time.perf_counter(), time.process_time()
        if stepper is None:
            outs = [env.step(a) for env, a in zip(live, actions)]
        else:
            outs = stepper.step(live, actions)
        t2, c2 = time.perf_counter(), time.process_time()
        env_s.append(t2 - t1)
        turn_s.append(t2 - t0)
        cpu_s.append(c2 - c1)
        live = [env for env, out in zip(live, outs) if not (out[2] or out[3])]
        if not live:
            break
    return env_s, turn_s, cpu_s


def steps_table(args, batches, setups, generator) -> None:
    """Serial against batched stepping, per backend and batch size."""
    print(f"generation stand-in: {args.latency * 1000:g} ms per turn; first {args.turns} turns of oracle episodes "
          f"(each step makes one call); env ms per turn: this process's wall time stepping, mean over those turns of "
          f"the fastest of {args.repeats} runs; CPU: this process only (HTTP servers run in their own processes)\n")
    print("| env | backend | batch | serial env ms/turn | share | batched env ms/turn | share | speed-up | "
          "serial env CPU ms/turn | batched env CPU ms/turn |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for env_id, backend, kwargs, processes in setups:
        for batch in batches:
            envs = [gym.make(env_id, **kwargs) for _ in range(batch)]
            warm_up(envs)
            serial, batched = [], []
            with BatchStepper(processes=processes or 0) as stepper:
                run(envs[: min(batch, 8)], stepper, StandIn(0.0), 1)  # start the pools
                for _ in range(args.repeats):  # interleaved, the fastest kept: the machine is shared
                    serial.append(run(envs, None, generator, args.turns))
                    batched.append(run(envs, stepper, generator, args.turns))
            for env in envs:
                env.close()
            serial_env, serial_turn, _ = min(serial, key=lambda r: sum(r[0]))
            batched_env, batched_turn, _ = min(batched, key=lambda r: sum(r[0]))
            s_env, b_env = statistics.mean(serial_env), statistics.mean(batched_env)
            s_cpu = min(statistics.mean(r[2]) for r in serial)
            b_cpu = min(statistics.mean(r[2]) for r in batched)
            s_share = sum(serial_env) / sum(serial_turn)
            b_share = sum(batched_env) / sum(batched_turn)
            print(f"| {env_id} | {backend} | {batch} | {s_env * 1000:.1f} | {s_share:.1%} | {b_env * 1000:.1f} | "
                  f"{b_share:.1%} | {s_env / b_env:.1f}x | {s_cpu * 1000:.1f} | {b_cpu * 1000:.1f} |", flush=True)


def ratio_table(args, batches, servers, hotpot) -> None:
    """A batch of steps that each search over HTTP against one request of the same queries."""
    print("\n| backend | batch | batched steps ms (turn 1) | one /retrieve of the same queries ms | ratio | "
          "steps CPU ms | request CPU ms | CPU ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for delay, srv in servers.items():
        backend = "bm25 over HTTP" + (f" +{delay * 1000:g} ms" if delay else "")
        client = HTTPRetriever(srv.url)
        for batch in batches:
            envs = [gym.make("HotpotQA-v0", **hotpot, retriever="http", retriever_options={"url": srv.url})
                    for _ in range(batch)]
            warm_up(envs)
            steps, request = [], []
            with BatchStepper() as stepper:
                for _ in range(2 * args.repeats + 1):  # interleaved, the fastest of each kept
                    for i, env in enumerate(envs):
                        env.reset(seed=i, options={"index": i})
                    actions = [env.unwrapped.oracle_action() for env in envs]
                    queries = [env.unwrapped.example.supporting_titles[0] for env in envs]
                    t, c = time.perf_counter(), time.process_time()
                    stepper.step(envs, actions)
                    steps.append((time.perf_counter() - t, time.process_time() - c))
                    t, c = time.perf_counter(), time.process_time()
                    client.search(queries, 3)
                    request.append((time.perf_counter() - t, time.process_time() - c))
            (sw, sc), (rw, rc) = (tuple(min(x) for x in zip(*m)) for m in (steps, request))
            print(f"| {backend} | {batch} | {sw * 1000:.1f} | {rw * 1000:.1f} | {sw / rw:.2f}x | {sc * 1000:.1f} | "
                  f"{rc * 1000:.1f} | {sc / rc:.2f}x |", flush=True)
            for env in envs:
                env.close()
        client.close()


def breakdown_table(args, batches, hotpot) -> None:
    """Where the CPU of a batched search turn goes (in-process BM25): planning, the search alone,
    the whole batched step, and the serial steps."""
    print("\n| batch | plan CPU ms | search alone CPU ms | batched step CPU ms | serial steps CPU ms |")
    print("|---:|---:|---:|---:|---:|")
    for batch in batches:
        envs = [gym.make("HotpotQA-v0", **hotpot) for _ in range(batch)]
        warm_up(envs)
        retriever = envs[0].unwrapped.search_tool.retriever
        rows = []
        with BatchStepper() as stepper:
            for _ in range(2 * args.repeats + 1):
                row = []
                for path in ("plan", "search", "batched", "serial"):
                    for i, env in enumerate(envs):
                        env.reset(seed=i, options={"index": i})
                    actions = [env.unwrapped.oracle_action() for env in envs]
                    c = time.process_time()
                    if path == "plan":
                        [env.unwrapped.plan_step(a) for env, a in zip(envs, actions)]
                    elif path == "search":
                        retriever.search([env.unwrapped.example.supporting_titles[0] for env in envs], 3)
                    elif path == "batched":
                        stepper.step(envs, actions)
                    else:
                        [env.step(a) for env, a in zip(envs, actions)]
                    row.append(time.process_time() - c)
                rows.append(row)
        print("| " + " | ".join([str(batch)] + [f"{min(col) * 1000:.1f}" for col in zip(*rows)]) + " |", flush=True)
        for env in envs:
            env.close()


def http_breakdown_table(args, batches, server, hotpot) -> None:
    """Where a batched search turn over HTTP spends its time: this (the env) process's CPU for
    planning, the request (encoding it, reading and decoding the answer into hits) and applying
    the results; the whole step's CPU and wall time; and the server's own work for the same
    queries (BM25 and encoding the answer, measured here on the same corpus), which the env waits for."""
    print("\n| batch | plan CPU ms | request CPU ms | apply CPU ms | batched step CPU ms | batched step wall ms | "
          "server BM25 CPU ms | server JSON encode CPU ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    local = BM25Retriever(gym.make("HotpotQA-v0", **hotpot).unwrapped.passages, cache=False)
    for batch in batches:
        envs = [gym.make("HotpotQA-v0", **hotpot, retriever="http", retriever_options={"url": server.url})
                for _ in range(batch)]
        warm_up(envs)
        client = envs[0].unwrapped.search_tool.retriever  # the one client every env of the batch shares
        rows = []
        with BatchStepper() as stepper:
            for _ in range(2 * args.repeats + 1):
                row = []
                for path in ("plan", "request", "apply", "batched", "bm25", "encode"):
                    for i, env in enumerate(envs):
                        env.reset(seed=i, options={"index": i})
                    actions = [env.unwrapped.oracle_action() for env in envs]
                    queries = [env.unwrapped.example.supporting_titles[0] for env in envs]
                    if path == "apply":
                        stepper.run_ahead(envs, actions)
                    elif path == "encode":
                        found = local.search(queries, 3)
                    t, c = time.perf_counter(), time.process_time()
                    if path == "plan":
                        [env.unwrapped.plan_step(a) for env, a in zip(envs, actions)]
                    elif path == "request":
                        client.search(queries, 3)
                    elif path in ("apply", "batched"):
                        (stepper.step(envs, actions) if path == "batched" else
                         [env.step(a) for env, a in zip(envs, actions)])
                    elif path == "bm25":
                        local.search(queries, 3)
                    else:  # what the server's handler does with the hits (toolgym.envs.retrieval.server)
                        result = [[{"document": hit_document(h), "score": h.score} for h in hits] for hits in found]
                        json.dumps({"result": result}, ensure_ascii=False).encode("utf-8", "replace")
                    row.append(time.process_time() - c)
                    if path == "batched":
                        row.append(time.perf_counter() - t)
                rows.append(row)
        print("| " + " | ".join([str(batch)] + [f"{min(col) * 1000:.1f}" for col in zip(*rows)]) + " |", flush=True)
        for env in envs:
            env.close()


def overlap_table(args, batches, servers, hotpot) -> None:
    """Lock-step turns (every completion at the end of the turn, then the batched step) against
    streamed ones (each env steps as its completion arrives), over the HTTP servers."""
    print(f"\ngeneration stand-in: {args.latency * 1000:g} ms per turn; streamed: completion k of n returned at "
          f"{args.latency * 1000:g} ms x k/n, random order; exposed env ms: after the last completion until every env "
          f"has stepped (lock-step: the whole batched step); share: exposed / turn; first {args.turns} turns of oracle "
          f"episodes, the fastest of {args.repeats} interleaved runs; at most {args.in_flight} micro-batches out at once; load average {os.getloadavg()[0]:.1f} at start\n")
    print("| backend | batch | lock-step exposed env ms/turn | share | streamed exposed env ms/turn | share | "
          "streamed micro-batches/turn | lock-step env CPU ms/turn | streamed CPU ms/turn (whole turn) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for delay, srv in servers.items():
        backend = "bm25 over HTTP" + (f" +{delay * 1000:g} ms" if delay else "")
        for batch in batches:
            envs = [gym.make("HotpotQA-v0", **hotpot, retriever="http", retriever_options={"url": srv.url})
                    for _ in range(batch)]
            warm_up(envs)
            lock, streamed = [], []
            with BatchStepper(in_flight=args.in_flight) as stepper:
                run(envs[: min(batch, 8)], stepper, StandIn(0.0), 1)  # start the pool
                streaming = StreamingStandIn(args.latency)
                for _ in range(args.repeats):
                    lock.append(run(envs, stepper, StandIn(args.latency), args.turns))
                    streamed.append(run_streaming(envs, stepper, streaming, args.turns))
            for env in envs:
                env.close()
            l_env, l_turn, _ = min(lock, key=lambda r: sum(r[0]))
            s_env, s_turn, _, s_req = min(streamed, key=lambda r: sum(r[0]))
            l_cpu = min(statistics.mean(r[2]) for r in lock)
            s_cpu = min(statistics.mean(r[2]) for r in streamed)
            print(f"| {backend} | {batch} | {statistics.mean(l_env) * 1000:.1f} | {sum(l_env) / sum(l_turn):.1%} | "
                  f"{statistics.mean(s_env) * 1000:.1f} | {sum(s_env) / sum(s_turn):.1%} | {statistics.mean(s_req):.1f} | "
                  f"{l_cpu * 1000:.1f} | {s_cpu * 1000:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="64,256,1024")
    ap.add_argument("--latency", type=float, default=0.3, help="seconds of the generation stand-in per turn")
    ap.add_argument("--turns", type=int, default=2, help="turns measured per rollout (the oracle searches twice)")
    ap.add_argument("--delays", default="5,20", help="ms injected per request into the HTTP server")
    ap.add_argument("--processes", type=int, default=2, help="worker processes for SQLQuery-v0's batched path")
    ap.add_argument("--tables", default="steps,ratio", help="which tables: steps (serial vs batched), ratio, breakdown, overlap "
                    "(lock-step vs streamed completions, over HTTP)")
    ap.add_argument("--in-flight", type=int, default=4,
                    help="overlap table: micro-batches out at once per retrieval server (BatchStepper(in_flight=))")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each path; the fastest is shown")
    ap.add_argument("--data", default=str(SAMPLE), help="HotpotQA dev file in the official format")
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    tables = set(args.tables.split(","))
    delays = [float(d) / 1000 for d in args.delays.split(",") if d.strip()]
    generator = StandIn(args.latency)

    hotpot = {"data_files": args.data}
    with_plain = tables != {"overlap"}  # the overlap table runs over the delayed servers only
    servers = {delay: ServerProcess(args.data, delay) for delay in ([0.0] if with_plain else []) + delays}

    setups = [("HotpotQA-v0", "bm25 in-process", hotpot, None)]
    for delay, srv in servers.items():
        name = "bm25 over HTTP" + (f" +{delay * 1000:g} ms" if delay else "")
        setups.append(("HotpotQA-v0", name, {**hotpot, "retriever": "http", "retriever_options": {"url": srv.url}}, None))
    setups.append(("SQLQuery-v0", "sqlite inline", {}, 0))
    setups.append(("SQLQuery-v0", f"sqlite, {args.processes} worker processes", {}, args.processes))

    if "steps" in tables:
        steps_table(args, batches, setups, generator)
    if "ratio" in tables:
        ratio_table(args, batches, servers, hotpot)
    if "breakdown" in tables:
        breakdown_table(args, batches, hotpot)
        http_breakdown_table(args, batches, servers[0.0], hotpot)
    if "overlap" in tables:
        overlap_table(args, batches, servers, hotpot)
    for srv in servers.values():
        srv.close()


if __name__ == "__main__":
    main()
