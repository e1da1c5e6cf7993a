"""Every shell command in README.md and docs/ runs as written (with small sizes where a flag allows).

The commands are read from the fenced ``bash``/``sh``/``shell``/``console`` blocks, so a command
added to the docs is picked up without editing this file. A command that cannot run here goes in
``SKIP`` (keyed by its start, with the reason); one that needs an optional part goes in ``NEEDS``.
They run in one scratch directory, in the order of the docs, after ``PREREQUISITES``: the state
the docs assume a reader has made (a demo run, a training run, two benchmark results).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}

# Command start -> why it does not run here.
SKIP = {
    "pip install": "installs into the environment; the tests run on the installed package",
    "python -m pytest": "the test suite itself",
    "python perf/": "perf scripts time things for minutes; tests/test_perf_scripts.py runs each at its smallest size",
    "accelerate launch": "several GPUs; two CPU processes through accelerate are tested in "
                         "tests/trainers/test_train_cli.py",
    "toolgym train --config configs/grpo_qwen2.5-3b": "a 3B model and datasets from the hub, on GPUs",
    "toolgym train --config configs/demo_cpu.yaml --resume runs/demo_cpu/checkpoint-40":
        "checkpoint 40 of a full 60-step run; `--resume` from the last checkpoint runs here",
    "toolgym bench --agent naive-rag --model Qwen/": "a model from the hub",
    "toolgym bench --agent policy": "HotpotQA from the hub",
    "toolgym bench --agent openai --model gpt-4o-mini": "a hosted endpoint and an API key",
    "python -m llama_cpp.server": "serves until stopped, and llama-cpp-python is a source build (12 minutes here); "
                                  "tests/benchmarks/test_llamacpp_server.py starts one on SmolLM2 where it is installed",
    "toolgym bench --agent openai --model smollm2": "the llama.cpp server of the command before it; "
                                                    "tests/benchmarks/test_llamacpp_server.py runs an episode "
                                                    "against one it starts",
    "toolgym serve-retriever": "serves until stopped; tests/envs/retrieval/test_cli.py starts, queries and stops one",
    "toolgym get-model gemma-3-270m": "242 MB from PyPI; the same fetch runs here on SmolLM2 (get-model "
                                      "smollm2-135m-instruct) and tests/generation/test_models.py loads GGUFs",
    "toolgym train --config configs/smollm2_hotpotqa.yaml": "GRPO on the warm-started SmolLM2 of the command "
                                                          "before it, minutes a step; tests/test_real_model.py "
                                                          "takes a real-model GRPO step",
    "toolgym warm-start --model pypi:": "a real model (SmolLM2-135M-Instruct, fetched from PyPI) and ~11 minutes "
                                             "on 2 cores; tests/trainers/test_warm_start.py runs the command on the "
                                             "tiny model",
    "toolgym train --config configs/smollm2_agent_r1.yaml": "the real-model recipe: warm start and GRPO on "
                                                            "SmolLM2, hours on 2 cores; tests/test_real_model.py "
                                                            "takes a real-model GRPO step",
    "toolgym bench --config configs/smollm2_agent_r1.yaml": "149 SmolLM2 episodes a row (minutes each), some from "
                                                            "the recipe's trained models; tests/benchmarks/test_cli.py "
                                                            "runs bench --config",
    'toolgym bench compare "runs/smollm2_agent_r1': "the recipe's result rows; tests/benchmarks/test_cli.py "
                                                     "compares DIR:LABEL rows",
    "toolgym demo --compare all": "five RL runs; tests/trainers/test_demo.py runs the comparison small",
    "toolgym demo --compare credit": "RL runs of every credit arm for each seed; tests/trainers/test_demo.py "
                                     "runs the comparison small",
}
# Command start -> (module it needs, the extra that provides it).
NEEDS = {
    "toolgym index": ("pyserini", "pyserini"),
    'python -c "from toolgym.envs.retrieval import make_retriever': ("pyserini", "pyserini"),
}

# Small sizes: inserted right after these command starts, before the documented arguments, so that
# the documented values win where they set the same key (later overrides win in both commands).
_TINY_DEMO = ("n_people=80 fresh_worlds=1 vocab_size=500 warm_steps=4 warm_pool=40 warm_batch=4 rl_steps=1 "
              "completions_per_step=8 num_generations=4 eval_questions=2 eval_samples=1 eval_every=1 "
              "max_turn_tokens=8 max_completion_length=160")
_TINY_TRAIN = ("num_tasks=64 grpo.max_steps=1 grpo.save_steps=1 grpo.per_device_train_batch_size=8 "
               "grpo.num_generations=4 grpo.max_completion_length=96 grpo.logging_steps=1")
# The commands whose results the docs build on, run first (with the small sizes).
PREREQUISITES = [
    "toolgym demo rl_steps=0",  # runs/demo/warm: what configs/demo_cpu.yaml trains from
    "toolgym train --config configs/demo_cpu.yaml",  # a checkpoint for --resume
    "toolgym bench --agent oracle --n 3 --out results/A",  # result directories for report and compare
    "toolgym bench --agent random --n 3 --out results/B",
    "toolgym bench --agent oracle --n 3 --out results/",
]


def doc_commands() -> list[tuple[str, str]]:
    """(where, command) for every shell command of the docs, first occurrence only. A block with
    shell control flow or variables is one command (a script); otherwise each line (with its
    ``\\`` continuations) is, split at ``&&``."""
    found: dict[str, str] = {}
    for path in DOCS:
        text = path.read_text()
        for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
            if match.group(1) not in SHELL_LANGS:
                continue
            line_no = text[:match.start()].count("\n") + 2
            body = match.group(2).replace("\\\n", " ")
            lines = [_strip_comment(line) for line in body.splitlines()]
            if any(re.match(r"(for|while|if|until)\b|\w+=", line) for line in lines):
                found.setdefault("\n".join(line for line in lines if line), f"{path.name}:{line_no}")
                continue
            for line in lines:
                for command in filter(None, (c.strip() for c in line.split("&&"))):
                    found.setdefault(" ".join(command.split()), f"{path.name}:{line_no}")
    return [(where, command) for command, where in found.items()]


def _strip_comment(line: str) -> str:
    """The line without its ``# comment`` (a ``#`` inside quotes or a word is kept)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def _why_not(command: str) -> str | None:
    for start, reason in SKIP.items():
        if command.startswith(start):
            return reason
    for start, (module, extra) in NEEDS.items():
        if command.startswith(start) and importlib.util.find_spec(module) is None:
            return f"needs {module}: pip install 'toolgym[{extra}]'"
    return None


def small(command: str) -> str:
    """``command`` with small sizes where a flag allows."""
    command = re.sub(r"--n \d+", "--n 3", command)
    command = re.sub(r"^(toolgym episodes)\b", r"\1 -n 5", command)
    if command.startswith("toolgym demo") and "--help-config" not in command:
        # the others start from the prerequisite's warm model: RL only, the warm start is its job
        # (a command that picks another chat template warms its own: a saved model keeps its template)
        warm = "" if command in PREREQUISITES or "chat_template=" in command else " warm_model=runs/demo/warm"
        command = command.replace("toolgym demo", f"toolgym demo {_TINY_DEMO}{warm}", 1)
    match = re.match(r"toolgym train --config (\S+)", command)
    if match:
        # one output directory per documented variant; `--resume` continues the plain run's
        documented = re.sub(r"--resume( \S+)?", "", command[match.end():]).split()
        out = "runs/walk/" + (re.sub(r"[^\w.=-]+", "_", "_".join(documented)) or "plain")
        command = command.replace(match.group(0), f"{match.group(0)} {_TINY_TRAIN} grpo.output_dir={out}", 1)
    return command


@pytest.fixture(scope="session")
def workdir(tmp_path_factory, shared_data_root):
    """A scratch checkout: configs/ and perf/ linked, ../shared/data where the docs expect it, a
    ``toolgym`` command that runs this checkout, a small corpus, and the prerequisites run."""
    root = tmp_path_factory.mktemp("docs")
    work = root / "work"
    work.mkdir()
    for name in ("configs", "perf"):
        (work / name).symlink_to(REPO / name)
    if shared_data_root is not None:
        (root / "shared").mkdir()
        (root / "shared" / "data").symlink_to(shared_data_root)
        if (shared_data_root.parent / "eval").is_dir():
            (root / "shared" / "eval").symlink_to(shared_data_root.parent / "eval")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    # scripts that exec this interpreter by its own path, not symlinks to it: a venv's python reached
    # through a link outside the venv finds no pyvenv.cfg beside it and loses the venv's packages
    for name, args in {"toolgym": "-m toolgym.cli ", "python": "", "python3": ""}.items():
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" {args}"$@"\n')
        (bin_dir / name).chmod(0o755)
    (work / "corpus.jsonl").write_text("".join(
        f'{{"id": "p{i}", "title": "T{i}", "text": "passage {i} about paris and rome"}}\n' for i in range(20)))
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(REPO),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    # training in a fresh process: its stderr shows every warning the run raises
    ran = {command: _run(small(command), work, env, fresh=command.startswith("toolgym train"))
           for command in PREREQUISITES}
    return work, env, ran


def _run(command: str, cwd: Path, env: dict, fresh: bool = False) -> subprocess.CompletedProcess:
    """A plain ``toolgym`` command runs in this process (torch and TRL are imported once, not once
    a command: minutes saved) unless ``fresh``; a script, or any other command, in bash."""
    if not fresh and re.fullmatch(r"toolgym [^;&|<>$`\n]*", command):
        from toolgym.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                mock.patch("sys.stdin", io.StringIO("")):
            try:
                code = main(shlex.split(command)[1:])
            except SystemExit as exit_:  # argparse
                code = exit_.code if isinstance(exit_.code, int) else 1
        return subprocess.CompletedProcess(command, code, out.getvalue(), err.getvalue())
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=900)


COMMANDS = doc_commands()


def test_the_docs_have_commands_and_every_skip_still_matches_one():
    commands = [c for _, c in COMMANDS]
    assert any(c.startswith("toolgym episodes") for c in commands) and len(commands) > 20
    for start in [*SKIP, *NEEDS]:  # a stale entry would hide nothing and mislead
        assert any(c.startswith(start) for c in commands), f"no documented command starts with {start!r}"


@pytest.mark.slow
@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{w} {' '.join(c.split())[:60]}" for w, c in COMMANDS])
def test_documented_command_runs(where, command, workdir):
    reason = _why_not(command)
    if reason:
        pytest.skip(reason)
    for part in ("data", "eval"):
        if f"../shared/{part}" in command and not (workdir[0].parent / "shared" / part).is_dir():
            pytest.skip(f"shared/{part} not found: set TOOLGYM_TEST_DATA or put shared/ beside the repo")
    work, env, ran = workdir
    result = ran.get(command) or _run(small(command), work, env)
    assert result.returncode == 0, f"{where}: {small(command)}\n{result.stdout[-1500:]}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


@pytest.mark.slow
def test_prerequisites_ran(workdir):
    work, _, ran = workdir
    for command, result in ran.items():
        assert result.returncode == 0, f"{small(command)}\n{result.stderr[-3000:]}"
    assert (work / "runs" / "demo" / "warm" / "config.json").is_file()
    # TRL's own calls of deprecated transformers aliases are filtered where they are made
    assert "gradient_checkpointing" not in ran["toolgym train --config configs/demo_cpu.yaml"].stderr
    out = ran["toolgym train --config configs/demo_cpu.yaml"].stdout
    assert "final adapter and tokenizer: runs/walk/plain/final; checkpoints: checkpoint-1" in out


def test_readme_scripted_agents_table_is_what_the_command_prints():
    """A table introduced by a backticked ``toolgym episodes ... --markdown`` is that command's output."""
    from toolgym.cli import main

    checked = 0
    for path in DOCS:
        text = path.read_text()
        for match in re.finditer(r"`(toolgym episodes [^`]*--markdown[^`]*)`[^|]*?\n\n((?:\|.*\n)+)", text):
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                assert main(shlex.split(match.group(1))[1:]) == 0
            printed = [line for line in buffer.getvalue().splitlines() if line.startswith("|")]
            assert match.group(2).strip().splitlines() == printed, f"{path.name}: rerun `{match.group(1)}`"
            checked += 1
    assert checked, "README.md should show the scripted agents' table printed by `toolgym episodes ... --markdown`"
