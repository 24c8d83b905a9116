"""CLIP: an image encoder and a text encoder trained to put a picture and its caption close.

Radford et al. 2021, "Learning Transferable Visual Models From Natural Language Supervision".
Both towers are pre-norm Transformer encoders; the text tower is causal and reads its summary
at the end-of-text token, the vision tower (a ViT, Dosovitskiy et al. 2021) at a learned class
token in front of the image's patches. Linear projections map both summaries into one space
where a cosine similarity times a learned scale (1 / temperature) is the logit.

Parameter names, config keys and maths follow transformers' CLIPModel, so a Hugging Face CLIP
folder (config.json + model.safetensors) loads here and gives the same embeddings. A small CNN
can stand in for the ViT (`vision_config.encoder = "cnn"`, lmstack's own option: such a folder
loads only here), built from the residual blocks of lmstack/models/cnn.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.models.cnn import Conv2d, ResidualBlock
from lmstack.models.small_folder import save_small_folder
from lmstack.nn.attention import attend, build_attention_mask

ACTIVATIONS = {"quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),  # OpenAI CLIP's GELU
               "gelu": F.gelu}


def _known(cls, raw: dict) -> dict:
    """The keys of an HF config this dataclass knows (HF writes many more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in raw.items() if k in names}


@dataclass
class CLIPTextConfig:
    vocab_size: int = 49408
    hidden_size: int = 512
    intermediate_size: int = 2048
    num_hidden_layers: int = 12
    num_attention_heads: int = 8
    max_position_embeddings: int = 77
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    eos_token_id: int = 49407


@dataclass
class CLIPVisionConfig:
    hidden_size: int = 768
    intermediate_size: int = 3072
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    image_size: int = 224
    patch_size: int = 32
    num_channels: int = 3
    hidden_act: str = "quick_gelu"
    layer_norm_eps: float = 1e-5
    encoder: str = "vit"                 # lmstack's option: "vit" (HF's) or "cnn"
    cnn_widths: list[int] = field(default_factory=lambda: [32, 64])


@dataclass
class CLIPConfig:
    text_config: CLIPTextConfig = field(default_factory=CLIPTextConfig)
    vision_config: CLIPVisionConfig = field(default_factory=CLIPVisionConfig)
    projection_dim: int = 512
    logit_scale_init_value: float = 2.6592  # ln(1 / 0.07): CLIP's initial temperature 0.07

    @classmethod
    def from_dict(cls, raw: dict) -> CLIPConfig:
        return cls(CLIPTextConfig(**_known(CLIPTextConfig, raw.get("text_config", {}))),
                   CLIPVisionConfig(**_known(CLIPVisionConfig, raw.get("vision_config", {}))),
                   **_known(cls, {k: v for k, v in raw.items()
                                  if k not in ("text_config", "vision_config")}))

    def to_dict(self) -> dict:
        return {"architectures": ["CLIPModel"], "model_type": "clip", **asdict(self)}


class CLIPAttention(nn.Module):
    """Multi-head self-attention with biased q/k/v/out projections (HF names)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(dim, dim)
                                                                for _ in range(4))

    def forward(self, x: Tensor, mask: Tensor | None, is_causal: bool) -> Tensor:
        B, T, D = x.shape
        q, k, v = (p(x).view(B, T, self.heads, -1).transpose(1, 2)   # [B, heads, T, d]
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        out = attend(q, k, v, mask, is_causal=is_causal)
        return self.out_proj(out.transpose(1, 2).reshape(B, T, D))


class CLIPMLP(nn.Module):
    def __init__(self, dim: int, hidden: int, act: str):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.act = ACTIVATIONS[act]

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, cfg: CLIPTextConfig | CLIPVisionConfig):
        super().__init__()
        dim = cfg.hidden_size
        self.self_attn = CLIPAttention(dim, cfg.num_attention_heads)
        self.layer_norm1 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.mlp = CLIPMLP(dim, cfg.intermediate_size, cfg.hidden_act)
        self.layer_norm2 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)

    def forward(self, x: Tensor, mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = x + self.self_attn(self.layer_norm1(x), mask, is_causal)
        return x + self.mlp(self.layer_norm2(x))


class CLIPEncoder(nn.Module):
    def __init__(self, cfg: CLIPTextConfig | CLIPVisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(CLIPEncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x: Tensor, mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        for layer in self.layers:
            x = layer(x, mask, is_causal)
        return x


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, cfg: CLIPTextConfig):
        super().__init__()
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embedding = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)

    def forward(self, input_ids: Tensor) -> Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        return self.token_embedding(input_ids) + self.position_embedding(positions)


class CLIPTextTransformer(nn.Module):
    """Causal encoder; the sequence's summary is the final state at its end-of-text token."""

    def __init__(self, cfg: CLIPTextConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = CLIPTextEmbeddings(cfg)
        self.encoder = CLIPEncoder(cfg)
        self.final_layer_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """(hidden states [B, T, D], pooled [B, D])."""
        x = self.embeddings(input_ids)                              # [B, T, D]
        T = input_ids.shape[1]
        mask = build_attention_mask(attention_mask, T, T, True, x.dtype, x.device)
        x = self.final_layer_norm(self.encoder(x, mask, is_causal=True))
        if self.config.eos_token_id == 2:
            # Old OpenAI configs say eos 2; their end token has the vocabulary's largest id,
            # so HF (and the original code) pool at the argmax of the ids instead.
            where = input_ids.argmax(dim=-1)
        else:  # the first end-of-text token (padding may reuse the same id after it)
            where = (input_ids == self.config.eos_token_id).int().argmax(dim=-1)
        return x, x[torch.arange(len(x), device=x.device), where]


class CLIPVisionEmbeddings(nn.Module):
    """Non-overlapping patches (a stride-p convolution), a class token in front, positions."""

    def __init__(self, cfg: CLIPVisionConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.randn(cfg.hidden_size) * cfg.hidden_size ** -0.5)
        self.patch_embedding = Conv2d(cfg.num_channels, cfg.hidden_size, cfg.patch_size,
                                      stride=cfg.patch_size, bias=False)
        n = (cfg.image_size // cfg.patch_size) ** 2 + 1
        self.position_embedding = nn.Embedding(n, cfg.hidden_size)

    def forward(self, pixel_values: Tensor) -> Tensor:
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)  # [B, N, D]
        cls = self.class_embedding.expand(len(patches), 1, -1)                    # [B, 1, D]
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight  # [B, N+1, D]


class CLIPVisionTransformer(nn.Module):
    """ViT: patches + class token through the encoder; the summary is the class token's state."""

    def __init__(self, cfg: CLIPVisionConfig):
        super().__init__()
        self.embeddings = CLIPVisionEmbeddings(cfg)
        self.pre_layrnorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)  # HF's typo
        self.encoder = CLIPEncoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        """(hidden states [B, N+1, D], pooled [B, D])."""
        x = self.encoder(self.pre_layrnorm(self.embeddings(pixel_values)))
        return x, self.post_layernorm(x[:, 0])


class CLIPVisionCNN(nn.Module):
    """The CNN option: a stem convolution and residual blocks (each after the first halves the
    side), then global average pooling; the feature map's positions serve as its tokens."""

    def __init__(self, cfg: CLIPVisionConfig):
        super().__init__()
        w = cfg.cnn_widths
        self.stem = Conv2d(cfg.num_channels, w[0], 3, 1, 1)
        self.blocks = nn.Sequential(*(ResidualBlock(a, b, 1 if i == 0 else 2)
                                      for i, (a, b) in enumerate(zip([w[0], *w], w))))
        self.proj = nn.Linear(w[-1], cfg.hidden_size)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixel_values: Tensor) -> tuple[Tensor, Tensor]:
        fmap = self.blocks(F.relu(self.stem(pixel_values)))       # [B, C, h, w]
        x = self.proj(fmap.flatten(2).transpose(1, 2))             # [B, h*w, D]
        return x, self.post_layernorm(x.mean(dim=1))


class CLIPModel(nn.Module):
    def __init__(self, config: CLIPConfig):
        super().__init__()
        self.config = config
        vc = config.vision_config
        self.text_model = CLIPTextTransformer(config.text_config)
        self.vision_model = (CLIPVisionCNN(vc) if vc.encoder == "cnn"
                             else CLIPVisionTransformer(vc))
        self.text_projection = nn.Linear(config.text_config.hidden_size, config.projection_dim,
                                         bias=False)
        self.visual_projection = nn.Linear(vc.hidden_size, config.projection_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.logit_scale_init_value))

    def get_text_features(self, input_ids: Tensor, attention_mask: Tensor | None = None
                          ) -> Tensor:
        """Projected text embeddings [B, projection_dim] (not normalised, as HF)."""
        return self.text_projection(self.text_model(input_ids, attention_mask)[1])

    def get_image_features(self, pixel_values: Tensor) -> Tensor:
        return self.visual_projection(self.vision_model(pixel_values)[1])

    def forward(self, input_ids: Tensor, pixel_values: Tensor,
                attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(logits_per_text [B_text, B_image], logits_per_image = its transpose)."""
        text = F.normalize(self.get_text_features(input_ids, attention_mask), dim=-1)
        image = F.normalize(self.get_image_features(pixel_values), dim=-1)
        # CLIP clips the scale at 100 so the temperature cannot collapse; HF leaves it to the
        # training script. Checkpoints sit at or below it, so loaded models match HF exactly.
        scale = self.logit_scale.exp().clamp(max=100.0)
        logits_per_text = scale * text @ image.T
        return logits_per_text, logits_per_text.T

    # ------------------------------------------------------------------ folders
    def save_pretrained(self, folder: str | Path) -> None:
        """config.json + model.safetensors in HF's layout (a ViT model loads in transformers)."""
        save_small_folder(folder, self.config.to_dict(), self)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> CLIPModel:
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(f"{folder} is not a CLIP folder: it needs config.json and "
                                    "model.safetensors (save one with save_pretrained)")
        config = CLIPConfig.from_dict(json.loads((folder / "config.json").read_text()))
        model = cls(config)
        state = load_file(folder / "model.safetensors")
        # HF keeps position ids as (non-persistent) buffers; older files still carry them.
        state = {k: v for k, v in state.items() if not k.endswith("position_ids")}
        model.load_state_dict(state, strict=True)
        return model.eval()

