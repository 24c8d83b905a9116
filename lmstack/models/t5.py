"""T5: the encoder-decoder Transformer, with relative position buckets and cross-attention.

Follows Raffel et al. 2020 ("Exploring the Limits of Transfer Learning with a Unified
Text-to-Text Transformer") and matches transformers' T5ForConditionalGeneration weight names,
both the original (ReLU feed-forward) and v1.1 (gated-GELU) variants.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lmstack.models.base import PretrainedModel
from lmstack.models.config import ModelConfig
from lmstack.models.registry import Family, register
from lmstack.nn.attention import additive_mask, attend, build_attention_mask, causal_mask
from lmstack.nn.feedforward import activation
from lmstack.nn.norms import RMSNorm
from lmstack.nn.positions import relative_position_bucket
from lmstack.nn.step_context import StepContext, plain_step

CrossKV = list[tuple[Tensor, Tensor]]  # per decoder layer: the encoder's keys and values


@dataclass
class T5Config(ModelConfig):
    model_type = "t5"
    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64
    d_ff: int = 2048
    num_layers: int = 6
    num_decoder_layers: int | None = None
    num_heads: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    initializer_factor: float = 1.0
    feed_forward_proj: str = "relu"  # "relu" (original T5) or "gated-gelu" (v1.1)
    is_encoder_decoder: bool = True
    tie_word_embeddings: bool = True
    # The original T5 rescales the decoder output by d_model^-0.5 before its tied lm_head;
    # v1.1 does not. transformers >= 5 writes this key; older configs say it through
    # tie_word_embeddings (False in v1.1), which `scales_decoder_output` falls back to.
    scale_decoder_outputs: bool | None = None
    decoder_start_token_id: int = 0
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1

    @property
    def decoder_layers(self) -> int:
        return self.num_decoder_layers if self.num_decoder_layers is not None else self.num_layers

    @property
    def gated(self) -> bool:
        return self.feed_forward_proj.startswith("gated-")

    @property
    def scales_decoder_output(self) -> bool:
        if self.scale_decoder_outputs is not None:
            return self.scale_decoder_outputs
        return self.tie_word_embeddings


class T5DenseActDense(nn.Module):
    """wo(relu(wi(x))): the original T5 feed-forward, no biases anywhere in T5."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.wi = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        self.act = activation(config.feed_forward_proj.split("-")[-1])

    def forward(self, x: Tensor) -> Tensor:
        return self.wo(self.dropout(self.act(self.wi(x))))


class T5DenseGatedActDense(nn.Module):
    """wo(gelu(wi_0(x)) * wi_1(x)): v1.1's gated feed-forward (Shazeer 2020's GEGLU)."""

    def __init__(self, config: T5Config):
        super().__init__()
        self.wi_0 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = nn.Linear(config.d_model, config.d_ff, bias=False)
        self.wo = nn.Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = nn.Dropout(config.dropout_rate)
        # "gated-gelu" means GPT-2's tanh-approximated GELU in every T5 v1.1 checkpoint.
        name = config.feed_forward_proj.split("-")[-1]
        self.act = activation("gelu_new" if name == "gelu" else name)

    def forward(self, x: Tensor) -> Tensor:
        return self.wo(self.dropout(self.act(self.wi_0(x)) * self.wi_1(x)))


class T5Attention(nn.Module):
    """Multi-head attention without 1/sqrt(d) scaling: T5 folds the scale into its init.

    Self-attention (keys from x) or cross-attention (keys from the encoder output). The first
    layer of each stack also owns the relative position bias that every layer then shares.
    """

    def __init__(self, config: T5Config, has_relative_bias: bool = False,
                 bidirectional: bool = True, layer_idx: int = 0):
        super().__init__()
        self.num_heads, self.d_kv, self.layer_idx = config.num_heads, config.d_kv, layer_idx
        inner = config.num_heads * config.d_kv
        self.q = nn.Linear(config.d_model, inner, bias=False)
        self.k = nn.Linear(config.d_model, inner, bias=False)
        self.v = nn.Linear(config.d_model, inner, bias=False)
        self.o = nn.Linear(inner, config.d_model, bias=False)
        self.dropout_p = config.dropout_rate
        self.bidirectional = bidirectional
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        if has_relative_bias:
            self.relative_attention_bias = nn.Embedding(self.num_buckets, config.num_heads)

    def position_bias(self, q_len: int, k_len: int) -> Tensor:
        """[1, heads, q_len, k_len] learned bias by bucket of (key - query) offset; the queries
        are the last q_len of k_len positions (a decoder step after k_len - q_len cached).

        The same arithmetic as nn.positions.RelativePositionBias; the table lives here because
        HF's key is SelfAttention.relative_attention_bias, one module shallower than that."""
        device = self.relative_attention_bias.weight.device
        q_pos = torch.arange(k_len - q_len, k_len, device=device)[:, None]
        k_pos = torch.arange(k_len, device=device)[None, :]
        buckets = relative_position_bucket(k_pos - q_pos, self.bidirectional,
                                           self.num_buckets, self.max_distance)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)[None]

    def heads(self, proj: nn.Linear, x: Tensor) -> Tensor:
        B, T, _ = x.shape  # [B, T, d_model] -> [B, heads, T, d_kv]
        return proj(x).view(B, T, self.num_heads, self.d_kv).transpose(1, 2)

    def forward(self, x: Tensor, bias: Tensor, context: StepContext | None = None,
                kv: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """`bias`: position bias plus mask, additive. Self-attention stores its keys through
        `context`; cross-attention reads the encoder's precomputed `kv`."""
        B, T, _ = x.shape
        q = self.heads(self.q, x)
        if kv is None:
            k, v = self.heads(self.k, x), self.heads(self.v, x)
            if context is not None:
                k, v = context.update(self.layer_idx, k, v)
        else:
            k, v = kv
        out = attend(q, k, v, bias, scale=1.0,
                     dropout_p=self.dropout_p if self.training else 0.0)
        return self.o(out.transpose(1, 2).reshape(B, T, -1))


class _Sublayer(nn.Module):
    """x + dropout(f(norm(x))): T5 normalises before each sub-layer (RMS norm, no bias)."""

    def __init__(self, config: T5Config, name: str, inner: nn.Module):
        super().__init__()
        self.add_module(name, inner)  # HF names: SelfAttention, EncDecAttention, DenseReluDense
        self.inner = name
        self.layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def forward(self, x: Tensor, *args, **kwargs) -> Tensor:
        return x + self.dropout(getattr(self, self.inner)(self.layer_norm(x), *args, **kwargs))


def _feed_forward(config: T5Config) -> nn.Module:
    return T5DenseGatedActDense(config) if config.gated else T5DenseActDense(config)


class T5Block(nn.Module):
    """Encoder: self-attention, FF. Decoder: causal self-attention, cross-attention, FF."""

    def __init__(self, config: T5Config, is_decoder: bool, layer_idx: int):
        super().__init__()
        attn = T5Attention(config, layer_idx == 0, not is_decoder, layer_idx)
        layers = [_Sublayer(config, "SelfAttention", attn)]
        if is_decoder:
            layers.append(_Sublayer(config, "EncDecAttention", T5Attention(config)))
        layers.append(_Sublayer(config, "DenseReluDense", _feed_forward(config)))
        self.layer = nn.ModuleList(layers)
        self.is_decoder = is_decoder

    def forward(self, x: Tensor, self_bias: Tensor, context: StepContext | None = None,
                cross_bias: Tensor | None = None, cross_kv: tuple | None = None) -> Tensor:
        x = self.layer[0](x, self_bias, context)
        if self.is_decoder:
            x = self.layer[1](x, cross_bias, kv=cross_kv)
        return self.layer[-1](x)


class T5Stack(nn.Module):
    """Embedding (shared with the other stack), blocks, final RMS norm."""

    def __init__(self, config: T5Config, is_decoder: bool, embed_tokens: nn.Embedding):
        super().__init__()
        self.embed_tokens = embed_tokens
        n = config.decoder_layers if is_decoder else config.num_layers
        self.block = nn.ModuleList(T5Block(config, is_decoder, i) for i in range(n))
        self.final_layer_norm = RMSNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = nn.Dropout(config.dropout_rate)

    def run(self, input_ids: Tensor, self_bias: Tensor, context: StepContext | None = None,
            cross_bias: Tensor | None = None, cross_kv: CrossKV | None = None,
            recompute: bool = False) -> Tensor:
        """`recompute`: gradient checkpointing, each block's activations redone in backward."""
        x = self.dropout(self.embed_tokens(input_ids))
        for i, block in enumerate(self.block):
            args = (x, self_bias, context, cross_bias, cross_kv[i] if cross_kv else None)
            x = checkpoint(block, *args, use_reentrant=False) if recompute else block(*args)
        return self.dropout(self.final_layer_norm(x))


def _padding_bias(attention_mask: Tensor | None, q_len: int, k_len: int, dtype,
                  device) -> Tensor:
    """Additive [B or 1, 1, q_len, k_len]: 0 where a key is a real token, very negative where
    it is padding (zeros when there is no mask)."""
    mask = build_attention_mask(attention_mask, q_len, k_len, False, dtype, device)
    return mask if mask is not None else torch.zeros(1, 1, q_len, k_len, dtype=dtype,
                                                     device=device)


class T5ForConditionalGeneration(PretrainedModel):
    """Text in, text out: encode the input once, decode the output token by token.

    forward(input_ids, attention_mask, decoder_input_ids) -> logits [B, T_dec, vocab], as
    transformers; `encode`, `cross_keys_values` and `decode` are the pieces generation uses.
    """

    config_class = T5Config

    def __init__(self, config: T5Config):
        super().__init__()
        self.config = config
        self.shared = nn.Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, False, self.shared)
        self.decoder = T5Stack(config, True, self.shared)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.init_weights()
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        tied = {"encoder.embed_tokens.weight": "shared.weight",
                "decoder.embed_tokens.weight": "shared.weight"}
        if self.config.tie_word_embeddings:
            tied["lm_head.weight"] = "shared.weight"
        return tied

    def init_weights(self) -> None:
        """Mesh TensorFlow's init, as T5 trains: each std is 1/sqrt(fan-in), except q's, which
        also absorbs the 1/sqrt(d_kv) that T5's attention leaves out."""
        c, f = self.config, self.config.initializer_factor
        for name, m in self.named_modules():
            if isinstance(m, nn.Embedding):
                std = c.d_model ** -0.5 if name.endswith("relative_attention_bias") else 1.0
                nn.init.normal_(m.weight, std=f * std)
            elif isinstance(m, nn.Linear):
                fan_in = m.in_features * (c.d_kv if name.endswith(".q") else 1)
                std = 1.0 if name == "lm_head" else fan_in ** -0.5
                nn.init.normal_(m.weight, std=f * std)

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Encoder hidden states [B, T_enc, d_model]; padding is masked as keys."""
        T = input_ids.shape[1]
        first = self.encoder.block[0].layer[0].SelfAttention
        bias = first.position_bias(T, T) + _padding_bias(
            attention_mask, T, T, self.shared.weight.dtype, input_ids.device)
        return self.encoder.run(input_ids, bias, recompute=self._recompute())

    def _recompute(self) -> bool:
        return self.gradient_checkpointing and self.training

    def cross_keys_values(self, encoder_hidden: Tensor) -> CrossKV:
        """Every decoder layer's keys and values over the encoder output: computed once per
        input, then reused by each decoding step (the encoder half of the seq2seq cache)."""
        out = []
        for block in self.decoder.block:
            attn = block.layer[1].EncDecAttention
            out.append((attn.heads(attn.k, encoder_hidden), attn.heads(attn.v, encoder_hidden)))
        return out

    def decode(self, decoder_input_ids: Tensor, encoder_hidden: Tensor,
               attention_mask: Tensor | None = None, decoder_attention_mask: Tensor | None = None,
               context: StepContext | None = None, cross_kv: CrossKV | None = None) -> Tensor:
        """Logits [B, T_dec, vocab]. `context` (positions, causal mask, self-attention KV
        store) defaults to a plain causal pass; `cross_kv` to computing them here."""
        if context is None:
            context = plain_step(decoder_input_ids, decoder_attention_mask)
        T, L = decoder_input_ids.shape[1], context.max_context
        dtype = self.shared.weight.dtype
        causal = context.attention_mask(dtype)
        if causal is None:  # the context leaves causality to SDPA; we add a bias, so spell it out
            causal = additive_mask(causal_mask(T, L, decoder_input_ids.device), dtype)
        first = self.decoder.block[0].layer[0].SelfAttention
        self_bias = first.position_bias(T, L) + causal
        cross_bias = _padding_bias(attention_mask, T, encoder_hidden.shape[1], dtype,
                                   encoder_hidden.device)
        if cross_kv is None:
            cross_kv = self.cross_keys_values(encoder_hidden)
        h = self.decoder.run(decoder_input_ids, self_bias, context, cross_bias, cross_kv,
                             recompute=self._recompute())
        if self.config.scales_decoder_output:
            h = h * self.config.d_model ** -0.5
        return self.lm_head(h)

    def shift_right(self, labels: Tensor) -> Tensor:
        """Decoder inputs from targets: start token first, -100 (ignored) read as padding."""
        ids = labels.new_full(labels.shape, self.config.decoder_start_token_id)
        ids[:, 1:] = labels[:, :-1]
        return ids.masked_fill(ids == -100, self.config.pad_token_id or 0)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                decoder_input_ids: Tensor | None = None,
                decoder_attention_mask: Tensor | None = None,
                labels: Tensor | None = None) -> Tensor:
        """Logits [B, T_dec, vocab] (decoder inputs from `labels` when not given)."""
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("T5 needs decoder_input_ids or labels to decode")
            decoder_input_ids = self.shift_right(labels)
        hidden = self.encode(input_ids, attention_mask)
        return self.decode(decoder_input_ids, hidden, attention_mask, decoder_attention_mask)


register(Family(T5Config, {"t5": "T5"}, {"ForConditionalGeneration": T5ForConditionalGeneration}))
