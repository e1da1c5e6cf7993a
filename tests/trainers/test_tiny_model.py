from toolgym.trainers.tiny_model import SPECIAL_TOKENS, TAG_TOKENS


def test_tokenizer_roundtrip_and_qwen_specials(tiny):
    model, tok = tiny
    text = 'Zorvath Quellin <tool_call>{"name": "search"}</tool_call> naïve 東京 \n\n  x'
    assert tok.decode(tok(text)["input_ids"]) == text
    for t in (*SPECIAL_TOKENS, *TAG_TOKENS):
        assert len(tok(t, add_special_tokens=False)["input_ids"]) == 1, t
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.padding_side == "left"
    assert model.config.tie_word_embeddings and model.config.vocab_size == len(tok)


def test_chat_template_is_qwen25(tiny):
    _, tok = tiny
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    out = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert out == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"


def test_saved_tokenizer_reloads_through_auto_tokenizer_with_the_same_ids(tmp_path):
    """TRL, `toolgym train` and `warm_model=` load the tiny model by path with AutoTokenizer, which
    picks Qwen2Tokenizer from the model type: it must split text exactly as the trained one did."""
    from transformers import AutoTokenizer

    from toolgym.trainers.tiny_model import TEST_SIZE, build_model, build_tokenizer, save_tiny

    texts = ["Krater (b. 1955) is a physician. Krater's birthplace is Ditu.", "<search> Zorvath Quellin</search>",
             'Doc 1 (Title: "The Ibraher") 12,500 staff; naïve 東京 \n\n  x', "<|im_start|>user\nQ<|im_end|>"]
    trained = build_tokenizer(texts * 50, vocab_size=400)  # numbers seen often enough to be merged
    auto = AutoTokenizer.from_pretrained(save_tiny(build_model(trained, **TEST_SIZE), trained, tmp_path))
    for text in texts:
        assert auto(text, add_special_tokens=False)["input_ids"] == trained(text, add_special_tokens=False)["input_ids"]
