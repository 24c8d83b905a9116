"""Image -> text: a small decoder that reads CLIP's image features as a prefix and writes.

ClipCap-style (Mokady et al. 2021; the prefix idea of Li & Liang 2021): the frozen CLIP vision
tower turns the image into a sequence of vectors (the class token and one per patch), a
LayerNorm + linear map puts them in the decoder's width, and a causal Transformer (lmstack's
CLIP blocks, pre-norm) continues the sequence with text. The text is always "prompt -> answer":
"[CLS] describe the image [SEP] a red circle at the top left [SEP]" for a caption,
"[CLS] what colour is the shape? [SEP] red [SEP]" for a question, so one decoder captions in
both languages and answers questions (the prompt's language picks the answer's).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from lmstack.models.clip import CLIPEncoder, CLIPTextConfig
from lmstack.models.small_folder import save_small_folder
from lmstack.nn.attention import build_attention_mask


@dataclass
class CaptionerConfig:
    vocab_size: int
    image_dim: int                # the CLIP vision tower's width
    image_tokens: int             # how many vectors it hands over (class token + patches)
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    max_text: int = 32
    eos_token_id: int = 3         # [SEP]: ends the prompt, then ends the answer

    def blocks(self) -> CLIPTextConfig:
        return CLIPTextConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                              intermediate_size=4 * self.hidden_size,
                              num_hidden_layers=self.num_hidden_layers,
                              num_attention_heads=self.num_attention_heads,
                              max_position_embeddings=self.max_text)


class PrefixCaptioner(nn.Module):
    def __init__(self, config: CaptionerConfig):
        super().__init__()
        self.config = config
        d = config.hidden_size
        self.prefix = nn.Sequential(nn.LayerNorm(config.image_dim), nn.Linear(config.image_dim, d))
        self.token_embedding = nn.Embedding(config.vocab_size, d)
        self.position_embedding = nn.Embedding(config.image_tokens + config.max_text, d)
        self.decoder = CLIPEncoder(config.blocks())
        self.final_layer_norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, config.vocab_size, bias=False)

    def forward(self, image_features: Tensor, input_ids: Tensor,
                attention_mask: Tensor | None = None) -> Tensor:
        """Next-token logits [B, T, vocab] for the text positions; image_features [B, N, Dv]."""
        prefix = self.prefix(image_features)                               # [B, N, D]
        x = torch.cat([prefix, self.token_embedding(input_ids)], dim=1)    # [B, N+T, D]
        x = x + self.position_embedding.weight[:x.shape[1]]
        n = prefix.shape[1]
        if attention_mask is not None:  # the prefix is always there
            attention_mask = torch.cat([attention_mask.new_ones(len(x), n), attention_mask], 1)
        L = x.shape[1]
        mask = build_attention_mask(attention_mask, L, L, True, x.dtype, x.device)
        x = self.final_layer_norm(self.decoder(x, mask, is_causal=True))
        return self.lm_head(x[:, n:])

    @torch.no_grad()
    def generate(self, image_features: Tensor, prompt_ids: Tensor, max_new: int = 12
                 ) -> list[list[int]]:
        """Greedy answers (ids, without the final [SEP]) for one prompt [T] per image.

        Every prompt of a batch has the same length here (one prompt per call), so no padding
        is needed; the whole sequence is re-read each step (answers are a few tokens long).
        """
        ids = prompt_ids[None].expand(len(image_features), -1)
        done = torch.zeros(len(ids), dtype=torch.bool)
        room = self.config.max_text - ids.shape[1]
        for _ in range(min(max_new, room)):
            nxt = self(image_features, ids)[:, -1].argmax(-1)               # [B]
            nxt = nxt.masked_fill(done, self.config.eos_token_id)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= nxt == self.config.eos_token_id
            if done.all():
                break
        answers = ids[:, prompt_ids.shape[0]:].tolist()
        eos = self.config.eos_token_id
        return [a[:a.index(eos)] if eos in a else a for a in answers]

    def save_pretrained(self, folder: str | Path) -> None:
        save_small_folder(folder, asdict(self.config), self)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> PrefixCaptioner:
        from safetensors.torch import load_file

        folder = Path(folder)
        model = cls(CaptionerConfig(**json.loads((folder / "config.json").read_text())))
        model.load_state_dict(load_file(folder / "model.safetensors"))
        return model.eval()
