"""Prefix tuning: learned keys and values that every layer's attention sees before the real
tokens (Li & Liang, 2021, "Prefix-Tuning: Optimizing Continuous Prompts for Generation").

The seam is the step context (lmstack/nn/step_context.py): `PrefixStep` wraps whatever context
the caller built (plain forward, `generate`'s StaticKVCache, the engine's paged BatchView) and
concatenates the P prefix keys and values in front of the ones the cache returns, with P
always-visible mask columns. The cache itself never stores the prefix, so no model, cache or
scheduler changes, and one prefix serves every row of a batch. As in PEFT (whose prefix sits in
HF's past_key_values), the real tokens' positions start at P and the prefix keys get no
rotary rotation; with grouped-query attention the prefix has num_key_value_heads heads.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmstack.adapt.wrapped import WrappedModel
from lmstack.nn.attention import additive_mask, causal_mask
from lmstack.nn.step_context import StepContext, resolve_step


class PrefixEncoder(nn.Module):
    """The P prefix vectors, all layers' keys and values in one row each [P, layers*2*kv*d].

    With `projection` (PEFT's prefix_projection) a small MLP reparameterises them during
    training, embedding [P, kv*d] -> Linear -> tanh -> Linear, which the paper found trains
    more stably; `freeze` folds it into a plain table (what PEFT saves)."""

    def __init__(self, num_virtual_tokens: int, num_layers: int, num_kv_heads: int,
                 head_dim: int, projection: bool = False, hidden_size: int | None = None):
        super().__init__()
        token_dim = num_kv_heads * head_dim
        out = num_layers * 2 * token_dim
        self.shape = (num_layers, num_kv_heads, head_dim)
        self.embedding = nn.Embedding(num_virtual_tokens, token_dim if projection else out)
        self.transform = nn.Sequential(
            nn.Linear(token_dim, hidden_size or token_dim), nn.Tanh(),
            nn.Linear(hidden_size or token_dim, out)) if projection else None

    def forward(self) -> Tensor:
        table = self.embedding.weight  # [P, token_dim or out]
        return table if self.transform is None else self.transform(table)

    @torch.no_grad()
    def freeze(self) -> None:
        """Replace the MLP by its output: inference needs only the table."""
        if self.transform is not None:
            table = self()
            self.embedding = nn.Embedding.from_pretrained(table, freeze=False)
            self.transform = None

    def keys_values(self) -> Tensor:
        """[layers * 2, kv_heads, P, d]: layer l's keys at 2l, values at 2l + 1 (PEFT's order)."""
        layers, kv, d = self.shape
        table = self()
        return table.view(table.shape[0], layers * 2, kv, d).permute(1, 2, 0, 3)


class PrefixStep:
    """A StepContext that puts P prefix keys/values before the wrapped context's own."""

    def __init__(self, inner: StepContext, prefix: Tensor):
        self.inner, self.prefix = inner, prefix  # prefix [layers * 2, kv, P, d]
        self.num_prefix = prefix.shape[2]
        self.positions = inner.positions + self.num_prefix  # real tokens follow the prefix
        self.max_context = inner.max_context + self.num_prefix

    def attention_mask(self, dtype: torch.dtype, sliding_window: int | None = None) -> Tensor:
        mask = self.inner.attention_mask(dtype, sliding_window)
        if mask is None:  # the inner context's "plain causal over all its keys"
            T = self.positions.shape[1]
            allowed = causal_mask(T, self.inner.max_context, self.positions.device)
            mask = additive_mask(allowed[None, None], dtype)
        B, _, T, _ = mask.shape
        visible = mask.new_zeros(B, 1, T, self.num_prefix)  # every query sees the prefix
        return torch.cat([visible, mask], dim=-1)  # [B or 1, 1, T, P + L]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.inner.update(layer, k, v)  # [B, kv, L, d]
        B = k.shape[0]
        pk = self.prefix[2 * layer].to(k.dtype).expand(B, -1, -1, -1)  # [B, kv, P, d]
        pv = self.prefix[2 * layer + 1].to(v.dtype).expand(B, -1, -1, -1)
        return torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)


class PrefixTuned(WrappedModel):
    """A causal LM with a trainable prefix; the base model is frozen. Called like the model
    (input_ids, attention_mask, position_ids, context, logits_to_keep), so `generate`, the
    Trainer and the engine run it unchanged."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int, projection: bool = False,
                 encoder_hidden_size: int | None = None):
        super().__init__(model)
        cfg = model.config
        param = next(model.parameters())
        self.prefix_encoder = PrefixEncoder(
            num_virtual_tokens, cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim,
            projection, encoder_hidden_size).to(param.device, param.dtype)

    def peft_config(self) -> dict:
        layers, kv, d = self.prefix_encoder.shape
        return {"peft_type": "PREFIX_TUNING",
                "num_virtual_tokens": self.prefix_encoder.embedding.num_embeddings,
                "token_dim": kv * d, "encoder_hidden_size": kv * d,
                "num_transformer_submodules": 1, "num_attention_heads": kv,
                "num_layers": layers, "prefix_projection": False}

    def peft_tensors(self) -> dict[str, Tensor]:
        return {"prompt_embeddings": self.prefix_encoder()}  # the MLP's output, as PEFT saves

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                position_ids: Tensor | None = None, context: StepContext | None = None,
                logits_to_keep: int = 0) -> Tensor:
        if not self.enabled:
            return self.model(input_ids, attention_mask, position_ids, context,
                              logits_to_keep=logits_to_keep)
        step = resolve_step(input_ids, attention_mask, position_ids, context)
        step = PrefixStep(step, self.prefix_encoder.keys_values())
        return self.model(input_ids, context=step, logits_to_keep=logits_to_keep)

