"""Prompt tuning: P learned input embeddings (a "soft prompt") in front of every sequence
(Lester et al., 2021, "The Power of Scale for Parameter-Efficient Prompt Tuning").

The soft prompt enters where token embeddings leave the embedding table: a forward hook on
the model's `embed_tokens` (or `wte`) prepends it, and the step context the wrapper hands the
decoder covers P + T inputs at positions 0 .. P+T-1, as PEFT's concatenated inputs_embeds do.
The wrapper extends a padding mask by P ones and returns logits for the T real tokens only,
so losses and samplers line up with the input ids as without the prompt.

Given a step context instead (a KV cache, the engine's paged batch, SFT's packed rows), it uses
that in a causal decoder the prompt's keys and values never depend on what follows: it runs the
prompt alone (differentiably, so training goes through it) and hands them to the context as a
prefix (prefix.py's PrefixStep). Same logits, and every packed example gets its own prompt.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmstack.adapt.prefix import PrefixStep, PrefixTuned
from lmstack.adapt.wrapped import WrappedModel
from lmstack.nn.step_context import PaddedStep, StepContext, resolve_step


def input_embeddings(model: nn.Module) -> nn.Embedding:
    """The token-embedding table a decoder starts from (Llama's embed_tokens, GPT-2's wte)."""
    for name, module in model.named_modules():
        if name.rpartition(".")[2] in ("embed_tokens", "wte") and isinstance(module, nn.Embedding):
            return module
    raise ValueError("prompt tuning needs a decoder with an `embed_tokens` or `wte` table")


class PromptTuned(WrappedModel):
    """A causal LM with a trainable soft prompt `prompt_embeddings` [P, hidden]; the base is
    frozen. Random init draws like a fresh nn.Embedding; `init_text` ids copy those tokens'
    embeddings (repeated or cut to P), PEFT's TEXT init. For generation, `as_prefix` computes
    the prompt's keys and values once instead of at every step."""

    def __init__(self, model: nn.Module, num_virtual_tokens: int,
                 init_text_ids: list[int] | None = None):
        super().__init__(model)
        embed = input_embeddings(model)
        prompt = torch.empty(num_virtual_tokens, embed.embedding_dim,
                             dtype=embed.weight.dtype, device=embed.weight.device)
        if init_text_ids:
            ids = (list(init_text_ids) * num_virtual_tokens)[:num_virtual_tokens]
            prompt.copy_(embed.weight.detach()[torch.tensor(ids, device=prompt.device)])
        else:
            nn.init.normal_(prompt)
        self.prompt_embeddings = nn.Parameter(prompt)
        self._prepend = False
        embed.register_forward_hook(self._hook)

    @property
    def num_virtual_tokens(self) -> int:
        return self.prompt_embeddings.shape[0]

    def peft_config(self) -> dict:
        P, hidden = self.prompt_embeddings.shape
        return {"peft_type": "PROMPT_TUNING", "num_virtual_tokens": P, "token_dim": hidden,
                "num_transformer_submodules": 1,
                "num_attention_heads": self.config.num_attention_heads,
                "num_layers": self.config.num_hidden_layers, "prompt_tuning_init": "RANDOM"}

    def peft_tensors(self) -> dict[str, Tensor]:
        return {"prompt_embeddings": self.prompt_embeddings}

    def _hook(self, module: nn.Module, args, out: Tensor) -> Tensor | None:
        if not self._prepend:
            return None
        prompt = self.prompt_embeddings.to(out.dtype).expand(out.shape[0], -1, -1)
        return torch.cat([prompt, out], dim=1)  # [B, P + T, hidden]

    def prompt_keys_values(self) -> Tensor:
        """[layers * 2, kv_heads, P, d]: every layer's (rotated) keys and values at the soft
        prompt's positions 0 .. P-1, from running the prompt alone; PrefixStep's layout."""
        captured: dict[int, tuple[Tensor, Tensor]] = {}

        def store(layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
            captured[layer] = (k, v)  # [1, kv_heads, P, d]
            return k, v

        P, device = self.num_virtual_tokens, self.prompt_embeddings.device
        nothing = torch.zeros(1, 0, dtype=torch.long, device=device)  # the prompt alone
        self._prepend = True
        try:
            self.model(nothing, context=PaddedStep(torch.arange(P, device=device)[None], P,
                                                   store=store), logits_to_keep=1)
        finally:
            self._prepend = False
        return torch.cat([torch.cat(captured[i]) for i in range(len(captured))])

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                position_ids: Tensor | None = None, context: StepContext | None = None,
                logits_to_keep: int = 0) -> Tensor:
        if not self.enabled:
            return self.model(input_ids, attention_mask, position_ids, context,
                              logits_to_keep=logits_to_keep)
        if context is not None or position_ids is not None:  # the prompt as a prefix
            step = PrefixStep(resolve_step(input_ids, attention_mask, position_ids, context),
                              self.prompt_keys_values())
            return self.model(input_ids, context=step, logits_to_keep=logits_to_keep)
        P = self.num_virtual_tokens
        B, T = input_ids.shape
        if attention_mask is not None:
            attention_mask = torch.cat([attention_mask.new_ones(B, P), attention_mask], dim=1)
        # The step is built for P + T inputs here, since a decoder may read positions before
        # its embedding runs (GPT-2 adds learned position rows to the token embeddings).
        positions = torch.arange(P + T, device=input_ids.device).expand(B, -1)
        self._prepend = True
        try:
            logits = self.model(input_ids, context=PaddedStep(positions, P + T, attention_mask),
                                logits_to_keep=logits_to_keep)
        finally:
            self._prepend = False
        return logits if logits_to_keep else logits[:, P:]  # [B, T, vocab]


@torch.no_grad()
def as_prefix(tuned: PromptTuned) -> PrefixTuned:
    """The same model with the prompt's keys and values computed once, for fast generation
    (PromptTuned itself recomputes them at every forward, as training needs)."""
    P = tuned.num_virtual_tokens
    prefix = PrefixTuned(tuned.model, P)
    kv = tuned.prompt_keys_values()  # [layers * 2, kv, P, d]
    prefix.prefix_encoder.embedding.weight.copy_(kv.permute(2, 0, 1, 3).reshape(P, -1))
    return prefix
