"""SFT data: every record format becomes a chat; the loss mask covers exactly the assistant's
tokens; the training prompt is the inference prompt token for token (SmolLM2's own template
and a tiny ChatML tokenizer); packed rows attend within their own example only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lmstack.data.chat_records import RecordError, read_records, to_chat, to_preference
from lmstack.data.mlm import IGNORE_INDEX
from lmstack.data.sft import SFTDataset, build_examples, tokenize_chat
from lmstack.models.llama import LlamaConfig, LlamaForCausalLM
from lmstack.nn.step_context import packed_step
from lmstack.tokenizer.chat_prompt import chat_prompt_ids

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"

CHAT = to_chat({"messages": [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "用中文说一个。"},
    {"role": "assistant", "content": "红色。"},
]})
TOOL_CHAT = to_chat({
    "conversations": [
        {"from": "human", "value": "Weather in Oslo?"},
        {"from": "function_call",
         "value": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})},
        {"from": "observation", "value": "{\"temp\": 3}"},
        {"from": "gpt", "value": "It is 3 degrees."},
    ],
    "tools": json.dumps([{"name": "get_weather", "description": "Current weather",
                          "parameters": {"type": "object",
                                         "properties": {"city": {"type": "string"}}}}]),
})


def labelled_runs(example) -> list[list[int]]:
    """The labelled tokens as contiguous runs."""
    runs, current = [], []
    for label in example.labels:
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(label)
    return runs + ([current] if current else [])


def assert_prompts_match_inference(tokenizer, chat, example):
    for i, m in enumerate(chat.messages):
        if m["role"] == "assistant":
            prompt = chat_prompt_ids(tokenizer, chat.messages[:i], chat.tools)
            assert example.ids[:len(prompt)] == prompt, f"prompt before turn {i} differs"
            assert example.labels[len(prompt)] != IGNORE_INDEX  # the reply starts right there


def test_record_formats_become_chats():
    alpaca = to_chat({"instruction": "Add", "input": "2 and 3", "output": "5"})
    assert alpaca.messages == [{"role": "user", "content": "Add\n\n2 and 3"},
                               {"role": "assistant", "content": "5"}]
    call = TOOL_CHAT.messages[1]["tool_calls"][0]["function"]
    assert call == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert TOOL_CHAT.messages[2]["role"] == "tool"
    assert TOOL_CHAT.tools[0]["function"]["name"] == "get_weather"
    with pytest.raises(RecordError, match="not a chat record"):
        to_chat({"prompt": "x"}, "record 7")


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repo")
def test_the_shared_files_all_read():
    for name in ("alpaca_en_demo", "alpaca_zh_demo", "glaive_toolcall_en_demo",
                 "glaive_toolcall_zh_demo"):
        chats = [to_chat(r, f"{name}[{i}]")
                 for i, r in enumerate(read_records(SHARED / "sft" / f"{name}.json"))]
        assert all(c.messages[-1]["role"] == "assistant" for c in chats)
    pairs = [to_preference(r) for r in read_records(SHARED / "preference" / "dpo_zh_demo.json")]
    assert len(pairs) == 300 and pairs[0].chosen["content"] != pairs[0].rejected["content"]


def test_tiny_template_masks_exactly_the_assistant_tokens(tokenizer):
    example = tokenize_chat(tokenizer, CHAT)
    im_end = tokenizer.token_to_id("<|im_end|>")
    assert [tokenizer.decode(run, skip_special_tokens=False) for run in labelled_runs(example)] \
        == ["Blue.<|im_end|>", "红色。<|im_end|>"]
    assert example.labels.count(im_end) == 2
    assert_prompts_match_inference(tokenizer, CHAT, example)


def test_tool_call_turns_train_on_the_call(tokenizer):
    example = tokenize_chat(tokenizer, TOOL_CHAT)
    runs = [tokenizer.decode(r, skip_special_tokens=False) for r in labelled_runs(example)]
    assert runs[0].startswith("<tool_call>") and '"get_weather"' in runs[0]
    assert runs[1] == "It is 3 degrees.<|im_end|>"
    assert_prompts_match_inference(tokenizer, TOOL_CHAT, example)


def test_smollm2_template_matches_the_engine_prompt(smollm2):
    from lmstack.engine import Engine
    from lmstack.engine.chat_model import EngineChatModel

    _, tok, _ = smollm2
    model, _, _ = smollm2
    example = tokenize_chat(tok, CHAT)
    chat_model = EngineChatModel(Engine(model, tok, max_num_seqs=1))
    for i in (2, 4):  # the engine's own rendering of the conversation before each reply
        engine_ids, _, _ = chat_model._prepare(CHAT.messages[:i], None, {})
        assert example.ids[:len(engine_ids)] == engine_ids
    whole = tok.apply_chat_template(CHAT.messages, tokenize=True)
    assert example.ids == whole  # turn by turn tokenizes as the whole text does
    assert [tok.decode(r, skip_special_tokens=False) for r in labelled_runs(example)] \
        == ["Blue.<|im_end|>", "红色。<|im_end|>"]
    with pytest.raises(RecordError, match="does not write tool calls|rejected"):
        tokenize_chat(tok, TOOL_CHAT)


def tiny_llama():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=600, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=4,
                                        num_key_value_heads=2, initializer_range=0.2)).eval()


def test_packed_rows_do_not_attend_across_examples(tokenizer):
    chats = [CHAT, to_chat({"instruction": "Say hi", "output": "Hi!"}), TOOL_CHAT]
    examples = build_examples(tokenizer, chats, max_len=512)
    data = SFTDataset(examples, max_len=512, pack_rows=True)
    assert len(data) == 1  # all three fit one row
    batch = data.batch([0])
    model = tiny_llama()
    with torch.no_grad():
        packed = model(batch["input_ids"], context=packed_step(batch["segment_ids"]))[0]
        plain = model(batch["input_ids"])[0]  # the break: one causal mask over the whole row
        at = 0
        for e in examples:
            alone = model(torch.tensor([e.ids]))[0]
            span = slice(at, at + len(e.ids))
            torch.testing.assert_close(packed[span], alone, atol=1e-5, rtol=1e-5)
            if at:  # later examples see earlier ones without the block-diagonal mask
                assert not torch.allclose(plain[span], alone, atol=1e-3)
            at += len(e.ids)
    positions = packed_step(batch["segment_ids"]).positions[0]
    assert positions[len(examples[0].ids)] == 0  # positions restart with each example
