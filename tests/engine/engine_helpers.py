"""Tiny real models and references for the engine tests: random Llama (GQA) and GPT-2 with
decisive logits, a naive full-recompute greedy decoder, and a scripted model whose output text
is known in advance (for streaming and stop-string tests)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.models.gpt2 import GPT2Config, GPT2LMHeadModel

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A server streams tokens to many clients at once.",
    "def add(a, b):\n    return a + b\n",
    "你好，世界。今天天气很好。",
    "Emoji travel well: 🙂 🚀 🎉 and so do accents: café, naïve.",
]
VOCAB = 300  # >= the BPE's size; a few extra ids the tokenizer never produces are fine


def peaky(model: nn.Module) -> nn.Module:
    # Large random weights give large logit margins, so greedy argmax is decisive and batch
    # shape (which reorders float sums) cannot flip a near-tie.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def tiny_llama(**overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = {"vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 128,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 256, "initializer_range": 0.2}
    return peaky(LlamaForCausalLM(LlamaConfig(**{**cfg, **overrides})))


def tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    return peaky(GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=256, n_embd=64,
                                             n_layer=2, n_head=4, initializer_range=0.2)))


def naive_greedy(model, prompt: list[int], n: int) -> list[int]:
    """The reference: recompute the whole sequence for every new token, no cache at all."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt):]


def random_prompts(lengths, seed: int = 0, vocab: int = VOCAB) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=g).tolist() for n in lengths]


class ScriptedLM(nn.Module):
    """Emits `script` after any prompt of `prompt_len` tokens: the logits at position p put
    all mass on script[p + 1 - prompt_len]. Lets tests know the exact output text."""

    def __init__(self, script: list[int], prompt_len: int, vocab: int):
        super().__init__()
        self.script, self.prompt_len = script, prompt_len
        self.config = SimpleNamespace(
            model_type="scripted", vocab_size=vocab, num_hidden_layers=1,
            num_attention_heads=1, num_key_value_heads=1, head_dim=4,
            max_position_embeddings=4096, eos_token_id=None)
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, position_ids=None, context=None,
                logits_to_keep=0):
        last = context.positions[:, -1].tolist()
        logits = torch.full((input_ids.shape[0], 1, self.config.vocab_size), -10.0)
        for b, p in enumerate(last):
            i = min(max(p + 1 - self.prompt_len, 0), len(self.script) - 1)
            logits[b, 0, self.script[i]] = 10.0
        return logits
