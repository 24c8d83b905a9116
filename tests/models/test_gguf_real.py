"""The real SmolLM2-135M-Instruct GGUF through lmstack against transformers' own GGUF loader:
logits, greedy continuations, token ids and the chat template."""

from __future__ import annotations

import torch

from lmstack.models.generate import generate

MIXED_TEXT = (
    "Hello, world! The year 2024 had 366 days.\n"
    "你好，世界。今天天气很好。\n"
    "Emoji: 🤗🎉👍🏽 café naïve\n"
    "def square(x: int) -> int:\n    return x ** 2  # <|im_end|> stays whole\n"
)


def test_logits_equal_transformers(smollm2, smollm2_hf):
    model, tokenizer, seconds = smollm2
    hf_model, _ = smollm2_hf
    print(f"lmstack.load(SmolLM2 GGUF) took {seconds:.1f} s")
    ids = torch.tensor([tokenizer.encode("The capital of France is")])
    with torch.inference_mode():
        ours, theirs = model(ids), hf_model(ids).logits
    assert ours.shape == theirs.shape == (1, ids.shape[1], 49152)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_greedy_continuation_equals_transformers(smollm2, smollm2_hf):
    model, tokenizer, _ = smollm2
    hf_model, _ = smollm2_hf
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    ids = torch.tensor([prompt])
    ours = generate(model, ids, max_new_tokens=32)
    with torch.inference_mode():
        theirs = hf_model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=32,
                                   do_sample=False, eos_token_id=None, pad_token_id=2)
    assert ours.shape[1] == ids.shape[1] + 32
    assert ours.tolist() == theirs.tolist()
    assert "Paris" in tokenizer.decode(ours[0, ids.shape[1]:])


def test_token_ids_equal_transformers(smollm2, smollm2_hf):
    _, tokenizer, _ = smollm2
    _, hf_tokenizer = smollm2_hf
    for text in (MIXED_TEXT, " leading space", "<|im_start|>user\nhi<|im_end|>", ""):
        assert tokenizer.encode(text) == hf_tokenizer(text)["input_ids"], text
    ids = tokenizer.encode(MIXED_TEXT)
    assert tokenizer.decode(ids) == MIXED_TEXT == hf_tokenizer.decode(ids)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 2)
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.encode("<|im_end|>") == [2]


def test_chat_template_renders_like_transformers(smollm2, smollm2_hf):
    _, tokenizer, _ = smollm2
    _, hf_tokenizer = smollm2_hf
    conversations = [
        [{"role": "user", "content": "What is 17 × 23?"}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "你好"}],
    ]
    for messages in conversations:
        for generation_prompt in (False, True):
            ours = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt)
            theirs = hf_tokenizer.apply_chat_template(
                messages, add_generation_prompt=generation_prompt, tokenize=False)
            assert ours == theirs
    assert ours.startswith("<|im_start|>system\nBe brief.<|im_end|>")
