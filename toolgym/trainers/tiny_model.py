"""A tiny Qwen2-style causal LM and byte-level BPE tokenizer, built offline in seconds.

Used by the tests and by ``toolgym demo``: no hub access, same chat template and special tokens as
Qwen2.5 (the template that TRL ships), so everything that works on this model works on a real one.

    tok = build_tokenizer(texts, vocab_size=600)
    model = build_model(tok, **TEST_SIZE)
    save_tiny(model, tok, path); model, tok = load_tiny(path)
"""

from __future__ import annotations

import copy
import importlib.resources
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from toolgym.generation.chat import END_OF_TURN_TOKENS
from toolgym.generation.models import load_model, read_chat_template
from toolgym.trainers._deps import require

# Qwen2.5's control tokens. Special ones are skipped by ``decode(skip_special_tokens=True)``; the
# tool tags are added (kept whole, so the model emits one token for them) but not special, as in Qwen.
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TAG_TOKENS = (
    "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<tools>", "</tools>",
    # Search-R1 tags format: one token each makes the tags format as easy to emit as hermes.
    "<search>", "</search>", "<answer>", "</answer>", "<information>", "</information>",
)

TEST_SIZE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2)
DEMO_SIZE = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2)


def qwen_chat_template() -> str:
    """The Qwen2.5 chat template shipped with TRL (``trl/chat_templates/qwen2_5.jinja``)."""
    require("trl", "train")
    return importlib.resources.files("trl").joinpath("chat_templates/qwen2_5.jinja").read_text()


# The special tokens a chat template writes: <|im_end|>, <｜User｜>, <turn|>, <start_of_turn>...
_TEMPLATE_SPECIAL = re.compile(r"<[|｜][^<>'\"\s]{1,40}?[|｜]>|<[a-z_]+\|>|<\|[a-z_]+>|<(?:start|end)_of_turn>")


def with_chat_template(tokenizer, name: str):
    """A copy of ``tokenizer`` carrying TRL's shipped chat template ``name`` (``"qwen3"``, ``"llama3_1"``...;
    or a template's source), the special tokens that template writes (one token each) and its
    end-of-turn token as eos. Build the model after this: the vocabulary may have grown."""
    source = read_chat_template(name)
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = source
    tok.add_tokens(sorted(set(_TEMPLATE_SPECIAL.findall(source))), special_tokens=True)
    if "bos_token" in source:
        tok.add_special_tokens({"bos_token": "<bos>"})
    eos = next((t for t in END_OF_TURN_TOKENS if t in source), None)
    if eos is not None:
        tok.eos_token = eos
    return tok


def build_tokenizer(texts: Iterable[str], vocab_size: int = 600, min_frequency: int = 2):
    """Train a byte-level BPE on ``texts`` and wrap it as a Qwen2.5-like ``PreTrainedTokenizerFast``.

    Args:
        texts: training text (env passages, scripted trajectories, freshly invented names...). The
            merges follow it, so names seen here tokenise into few pieces.
        vocab_size: total size including the 256 byte tokens and the added tokens.
        min_frequency: a pair is merged only if seen this often.

    Returns:
        A tokenizer with eos ``<|im_end|>``, pad ``<|endoftext|>``, left padding and the Qwen2.5
        chat template; ``decode(encode(s)) == s`` for any NFC-normalised string.
    """
    require("tokenizers", "train")
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    core = Tokenizer(models.BPE())
    # Qwen2's own normaliser and pre-tokeniser (digits one by one): a saved model has model_type
    # qwen2, so AutoTokenizer loads its tokenizer as Qwen2Tokenizer, which installs these. Train
    # with anything else and the reloaded tokenizer splits text differently from the trained one.
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_strings(texts), trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        clean_up_tokenization_spaces=False,  # otherwise decode() is not the inverse of encode()
        model_max_length=32768,
    )
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tok.add_tokens(list(TAG_TOKENS))
    tok.chat_template = qwen_chat_template()
    return tok


def _strings(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"build_tokenizer wants strings, got {type(text).__name__}: {text!r:.80}")
        yield text


def build_model(tokenizer, *, hidden_size: int = 64, intermediate_size: int = 128, num_hidden_layers: int = 2,
                num_attention_heads: int = 4, num_key_value_heads: int = 2, max_position_embeddings: int = 4096,
                seed: int = 0):
    """A randomly initialised ``Qwen2ForCausalLM`` sized for ``tokenizer`` (tied embeddings, fp32).

    Use ``**TEST_SIZE`` (tests) or ``**DEMO_SIZE`` (the CPU demo: about 570k parameters).
    """
    torch = require("torch", "train")
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    # HF generate defaults to top_k=50; sampling for RL must be from the full distribution.
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, do_sample=True, top_k=0,
        temperature=1.0,
    )
    return model


def save_tiny(model, tokenizer, path: str | Path) -> Path:
    """Save model and tokenizer with ``save_pretrained`` (loadable by ``from_pretrained`` and TRL)."""
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_tiny(path: str | Path):
    """Load what :func:`save_tiny` wrote: ``(model, tokenizer)``, through the one model loader."""
    return load_model(path, progress=False)
