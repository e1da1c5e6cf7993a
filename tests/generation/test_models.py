"""The one model loader: GGUF files (converted once, cached), saved models, adapters, chat templates."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from tests.generation.gguf_writer import write_gguf  # noqa: E402
from toolgym.generation import models  # noqa: E402
from toolgym.generation.models import ModelLoadError, gguf_file, load_model, resolve_model, save_model  # noqa: E402

TEXT = "<|im_start|>user\nWho directed <tool_call> 1997?<|im_end|>"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLGYM_CACHE", str(tmp_path / "cache"))  # each test converts for itself


@pytest.fixture
def tiny_gguf(tiny, tmp_path):
    model, tok = tiny
    (tmp_path / "gguf").mkdir()
    return write_gguf(model, tok, tmp_path / "gguf" / "tiny.Q8.gguf")


def _logits(model, tok):
    ids = torch.tensor([tok(TEXT, add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        return model(ids).logits


def test_a_gguf_file_and_its_directory_load_as_the_model_it_holds(tiny, tiny_gguf):
    model, tok = tiny
    for spec in (tiny_gguf, tiny_gguf.parent, str(tiny_gguf)):
        loaded, loaded_tok = load_model(spec)
        assert loaded_tok(TEXT)["input_ids"] == tok(TEXT)["input_ids"]
        assert torch.equal(_logits(loaded, loaded_tok), _logits(model, tok))
        assert loaded_tok.chat_template == tok.chat_template and loaded_tok.padding_side == "left"


def test_the_conversion_runs_once_then_the_cache_is_read(tiny_gguf, monkeypatch, capsys):
    first = resolve_model(tiny_gguf)
    assert "converting" in capsys.readouterr().out

    def no_second_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(models, "save_model", no_second_conversion)
    assert resolve_model(tiny_gguf.parent) == first
    assert "converting" not in capsys.readouterr().out
    load_model(tiny_gguf)  # from the cache


def test_an_interrupted_conversion_is_redone_not_taken_as_complete(tiny_gguf, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "save_model", killed)
    with pytest.raises(KeyboardInterrupt):
        resolve_model(tiny_gguf)
    monkeypatch.undo()
    target = resolve_model(tiny_gguf)
    assert (models.Path(target) / "config.json").is_file()


def test_a_model_without_chat_template_is_refused_with_the_fix_or_given_one(tiny, tmp_path):
    model, tok = tiny
    path = write_gguf(model, tok, tmp_path / "base.gguf", chat_template=False)
    with pytest.raises(ModelLoadError, match="no chat template.*--chat-template"):
        load_model(path)
    _, loaded_tok = load_model(path, chat_template="qwen2_5")
    assert "<|im_start|>" in loaded_tok.chat_template
    jinja = tmp_path / "t.jinja"
    jinja.write_text(tok.chat_template)
    assert load_model(path, chat_template=str(jinja))[1].chat_template == tok.chat_template
    with pytest.raises(ValueError, match="chat_template"):
        load_model(path, chat_template="no-such-template")


def test_an_adapter_on_a_gguf_base_saves_and_reloads(tiny_gguf, tmp_path):
    peft = pytest.importorskip("peft")
    base, tok = load_model(tiny_gguf)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    expected = _logits(model, tok)
    out = save_model(model, tok, tmp_path / "adapter")
    assert (out / "adapter_config.json").is_file()
    reloaded, reloaded_tok = load_model(out)
    assert isinstance(reloaded, peft.PeftModel)
    assert torch.allclose(_logits(reloaded, reloaded_tok), expected, atol=1e-5)
    merged, _ = load_model(out, merge_adapter=True)
    assert not isinstance(merged, peft.PeftModel)
    assert torch.allclose(_logits(merged, reloaded_tok), expected, atol=1e-4)
    full = save_model(merged, tok, tmp_path / "merged")  # a GGUF-born model saves (its quantizer dropped)
    assert torch.allclose(_logits(load_model(full)[0], reloaded_tok), expected, atol=1e-4)


def test_names_that_load_nothing_say_so(tmp_path, tiny_gguf):
    with pytest.raises(ModelLoadError, match="no such GGUF file"):
        resolve_model(tmp_path / "missing.gguf")
    (tiny_gguf.parent / "other.gguf").write_bytes(tiny_gguf.read_bytes())
    with pytest.raises(ModelLoadError, match="holds 2 GGUF files"):
        gguf_file(tiny_gguf.parent)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_model(empty)
