"""A quantized folder is served like any other: `lmstack serve`'s loader opens it, the real
server answers over HTTP with the same greedy tokens as the quantized model in process, and
the in-process ChatModel (what `lmstack chat` runs) chats with it."""

from __future__ import annotations

import httpx
import torch

from lmstack.engine import Engine, SamplingParams
from lmstack.engine.chat_model import EngineChatModel
from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.quant import QuantLinear, quantize_model, save_quantized
from lmstack.serve import BackgroundServer, create_app
from lmstack.serve.registry import load_entry
from lmstack.tokenizer import train_bpe_from_iterator

TEXT = ["The quick brown fox jumps over the lazy dog.", "A server streams tokens at once."]


def test_quantized_folder_serves_and_chats(tmp_path):
    tok = train_bpe_from_iterator(TEXT * 20, vocab_size=300, show_progress=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        initializer_range=0.2)).eval()
    quantize_model(model, "int8")
    folder = save_quantized(model, tok, tmp_path / "q8")
    want = Engine(model, tok).generate(["The quick"], SamplingParams(
        max_tokens=6, temperature=0, ignore_eos=True))[0].text
    entry = load_entry(folder, "q8")
    assert any(isinstance(m, QuantLinear) for m in entry.engine.model.modules())
    with BackgroundServer(create_app({"q8": entry})) as server:
        r = httpx.post(server.url + "/v1/completions", json={
            "model": "q8", "prompt": "The quick", "max_tokens": 6, "temperature": 0,
            "ignore_eos": True}, timeout=60)
    assert r.status_code == 200 and r.json()["choices"][0]["text"] == want
    reply = EngineChatModel(folder).chat([{"role": "user", "content": "hi"}], max_tokens=4)
    assert reply.usage.completion_tokens >= 1
