"""The Llama family as one decoder: Llama 1-3, Qwen2 and Mistral differ only by config.

Follows Touvron et al. 2023 (pre-RMSNorm, rotary positions, SwiGLU, grouped-query attention)
and matches transformers' LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM weight names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lmstack.models.base import PretrainedModel
from lmstack.models.config import ModelConfig
from lmstack.models.registry import Family, register
from lmstack.nn.attention import GroupedQueryAttention
from lmstack.nn.feedforward import SwiGLU
from lmstack.nn.moe import MoEFeedForward
from lmstack.nn.norms import RMSNorm
from lmstack.nn.positions import RotaryEmbedding
from lmstack.nn.step_context import StepContext, resolve_step

# The config.json model_types this one class implements, and the prefix of their HF names.
NAME_PREFIXES = {"llama": "Llama", "qwen2": "Qwen2", "mistral": "Mistral"}


@dataclass
class LlamaConfig(ModelConfig):
    model_type: str = "llama"  # "llama", "qwen2" or "mistral"
    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    num_key_value_heads: int | None = None
    head_dim: int | None = None
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None
    attention_bias: bool = False
    mlp_bias: bool = False
    tie_word_embeddings: bool = False
    sliding_window: int | None = None
    use_sliding_window: bool | None = None
    initializer_range: float = 0.02
    # Sparse mixture-of-experts feed-forward (lmstack.nn.moe); None/0 experts = dense SwiGLU.
    # None, not a number, by default so a dense model's config.json stays as Hugging Face's.
    n_experts: int | None = None
    experts_per_token: int | None = None  # k of top-k routing (default 2)
    moe_capacity_factor: float | None = None  # training-time cap per expert (default 1.25)
    moe_aux_loss_coef: float | None = None  # weight of the balancing loss (default 0.01)

    def __post_init__(self):
        if self.model_type not in NAME_PREFIXES:
            raise ValueError(f"model_type {self.model_type!r} is not a Llama-family type")
        self.num_key_value_heads = self.num_key_value_heads or self.num_attention_heads
        self.head_dim = self.head_dim or self.hidden_size // self.num_attention_heads
        if self.n_experts:
            self.experts_per_token = self.experts_per_token or 2
            self.moe_capacity_factor = (1.25 if self.moe_capacity_factor is None
                                        else self.moe_capacity_factor)
            self.moe_aux_loss_coef = (0.01 if self.moe_aux_loss_coef is None
                                      else self.moe_aux_loss_coef)

    @classmethod
    def _normalise(cls, d: dict[str, Any]) -> None:
        # transformers >= 5 folds rope_theta and rope_scaling into one "rope_parameters" dict.
        params = d.pop("rope_parameters", None)
        if params:
            params = dict(params)
            d.setdefault("rope_theta", params.pop("rope_theta", 10000.0))
            if params.get("rope_type", params.get("type", "default")) != "default":
                d.setdefault("rope_scaling", params)
        d.pop("layer_types", None)  # derived from sliding_window; rewritten by transformers

    @property
    def qkv_bias(self) -> bool:
        return self.attention_bias or self.model_type == "qwen2"  # Qwen2 always biases q, k, v

    @property
    def attention_window(self) -> int | None:
        """The sliding window actually in force (Qwen2 only uses it when switched on)."""
        if self.model_type == "qwen2" and not self.use_sliding_window:
            return None
        return self.sliding_window


class LlamaDecoderLayer(nn.Module):
    """x + attn(norm(x)), then x + mlp(norm(x)): pre-normalisation keeps deep stacks stable."""

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.self_attn = GroupedQueryAttention(
            config.hidden_size, config.num_attention_heads, config.num_key_value_heads,
            config.head_dim, qkv_bias=config.qkv_bias, o_bias=config.attention_bias,
            layer_idx=layer_idx,
        )
        self.mlp = SwiGLU(
            config.hidden_size, config.intermediate_size, config.hidden_act, config.mlp_bias
        ) if not config.n_experts else MoEFeedForward(
            config.hidden_size, config.intermediate_size, config.n_experts,
            config.experts_per_token, config.moe_capacity_factor, config.moe_aux_loss_coef,
            config.hidden_act, config.mlp_bias,
        )
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x: Tensor, mask: Tensor | None, rotary, context: StepContext) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), mask, rotary, context)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(PretrainedModel):
    """The decoder stack without the language-model head (HF's `model.` prefix)."""

    config_class = LlamaConfig

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(
            LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers)
        )
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config.head_dim, config.rope_theta, config.rope_scaling)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        context: StepContext | None = None,
        inputs_embeds: Tensor | None = None,
    ) -> Tensor:
        """Hidden states [B, T, hidden] for input_ids [B, T].

        Without a context this is the plain forward: attention_mask is [B, T] with 1 for real
        tokens (HF's convention) and positions default to 0 .. T-1 as in transformers. With
        one (a cache's step), the context alone says positions, mask and where keys go.
        """
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds
        context = resolve_step(x, attention_mask, position_ids, context)
        # Built once per pass, shared by every layer.
        mask = context.attention_mask(x.dtype, self.config.attention_window)
        rotary = self.rotary_emb(context.positions, x.dtype)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, mask, rotary, context, use_reentrant=False)
            else:
                x = layer(x, mask, rotary, context)
        return self.norm(x)


class LlamaForCausalLM(PretrainedModel):
    """Decoder + a linear head to vocabulary logits (tied to the embeddings when configured)."""

    config_class = LlamaConfig
    base_model_prefix = "model"

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.init_weights()
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        if self.config.tie_word_embeddings:
            return {"lm_head.weight": "model.embed_tokens.weight"}
        return {}

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        context: StepContext | None = None,
        logits_to_keep: int = 0,
    ) -> Tensor:
        """Logits [B, T, vocab]; `logits_to_keep=n` computes only the last n positions (decode
        needs just the final one, and the head is the largest matmul of a small model)."""
        h = self.model(input_ids, attention_mask, position_ids, context)
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        return self.lm_head(h)


register(Family(LlamaConfig, NAME_PREFIXES, {"ForCausalLM": LlamaForCausalLM, "Model": LlamaModel}))
