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
