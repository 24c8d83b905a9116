"""GPT-2: a decoder-only Transformer with learned positions, pre-LayerNorm and a GELU MLP.

Follows Radford et al. 2019 and matches transformers' GPT2LMHeadModel weight names. HF stores
GPT-2's projections as Conv1D ([in, out]); we use nn.Linear, and GPT-2's entry in
models/registry.py names the weights hub.py transposes at load/save time.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lmstack.models.base import PretrainedModel
from lmstack.models.config import ModelConfig
from lmstack.models.registry import Family, register
from lmstack.nn.attention import attend
from lmstack.nn.feedforward import GeluMLP
from lmstack.nn.norms import LayerNorm
from lmstack.nn.step_context import StepContext, resolve_step


@dataclass
class GPT2Config(ModelConfig):
    model_type = "gpt2"
    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True

    # Uniform names so engines and trainers need not know each family's spelling.
    @property
    def hidden_size(self) -> int:
        return self.n_embd

    @property
    def num_hidden_layers(self) -> int:
        return self.n_layer

    @property
    def num_attention_heads(self) -> int:
        return self.n_head

    @property
    def num_key_value_heads(self) -> int:
        return self.n_head

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def max_position_embeddings(self) -> int:
        return self.n_positions


class GPT2Attention(nn.Module):
    """Multi-head attention with one fused q/k/v projection (c_attn), as GPT-2 stores it."""

    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.n_head, self.layer_idx = config.n_head, layer_idx
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)

    def forward(self, x: Tensor, mask: Tensor | None, context: StepContext) -> Tensor:
        B, T, C = x.shape
        q, k, v = (
            t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
            for t in self.c_attn(x).split(C, dim=-1)
        )
        k, v = context.update(self.layer_idx, k, v)
        out = attend(q, k, v, mask, is_causal=True)
        return self.c_proj(out.transpose(1, 2).reshape(B, T, C))


class GPT2Block(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_epsilon)
        self.mlp = GeluMLP(config.n_embd, config.n_inner or 4 * config.n_embd,
                           config.activation_function)

    def forward(self, x: Tensor, mask: Tensor | None, context: StepContext) -> Tensor:
        x = x + self.attn(self.ln_1(x), mask, context)
        return x + self.mlp(self.ln_2(x))


class GPT2Model(PretrainedModel):
    """Token + position embeddings, the block stack and a final LayerNorm (HF `transformer.`)."""

    config_class = GPT2Config

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.h = nn.ModuleList(GPT2Block(config, i) for i in range(config.n_layer))
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_epsilon)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        context: StepContext | None = None,
    ) -> Tensor:
        """Hidden states [B, T, n_embd]; arguments as in LlamaModel.forward."""
        context = resolve_step(input_ids, attention_mask, position_ids, context)
        if context.max_context > self.config.n_positions:
            raise ValueError(
                f"sequence of {context.max_context} tokens exceeds GPT-2's "
                f"{self.config.n_positions} learned positions; truncate the input"
            )
        x = self.wte(input_ids) + self.wpe(context.positions)
        mask = context.attention_mask(x.dtype)  # once per pass, shared by every block
        for block in self.h:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, mask, context, use_reentrant=False)
            else:
                x = block(x, mask, context)
        return self.ln_f(x)


class GPT2LMHeadModel(PretrainedModel):
    config_class = GPT2Config
    base_model_prefix = "transformer"

    def __init__(self, config: GPT2Config):
        super().__init__()
        self.config = config
        self.transformer = GPT2Model(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.init_weights()
        self.tie_weights()

    def tied_weights(self) -> dict[str, str]:
        if self.config.tie_word_embeddings:
            return {"lm_head.weight": "transformer.wte.weight"}
        return {}

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        context: StepContext | None = None,
        logits_to_keep: int = 0,
    ) -> Tensor:
        h = self.transformer(input_ids, attention_mask, position_ids, context)
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        return self.lm_head(h)


register(Family(
    GPT2Config, {"gpt2": "GPT2"}, {"LMHeadModel": GPT2LMHeadModel, "Model": GPT2Model},
    # Conv1D weights, stored [in, out]: every GPT-2 class, backbone included, transposes them.
    transposed_weights=("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                        "mlp.c_proj.weight"),
    # Older GPT-2 checkpoints store the causal mask as buffers; we build masks on the fly.
    ignored_keys=("attn.bias", "attn.masked_bias")))
