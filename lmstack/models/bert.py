"""BERT: a bidirectional Transformer encoder with post-LayerNorm, and its task heads.

Follows Devlin et al. 2019 (masked LM + next-sentence prediction pretraining) and matches
transformers' BertModel / BertForMaskedLM / BertForPreTraining / BertForNextSentencePrediction /
BertForSequenceClassification weight names; `mean_pool` gives sentence embeddings as in
Sentence-BERT (Reimers & Gurevych 2019).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from lmstack.models.base import PretrainedModel
from lmstack.models.config import ModelConfig
from lmstack.models.registry import Family, register
from lmstack.nn.attention import attend, build_attention_mask
from lmstack.nn.feedforward import activation
from lmstack.nn.norms import LayerNorm

POOLINGS = ("cls", "mean")


@dataclass
class BertConfig(ModelConfig):
    model_type = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    id2label: dict | None = None
    label2id: dict | None = None
    # What the sequence-classification head reads (the name ModernBertConfig uses): "cls", the
    # pooled [CLS] vector, as transformers' BertForSequenceClassification; or "mean", the
    # average of the real tokens' last hidden states, as sentence-transformers embeds.
    classifier_pooling: str = "cls"

    @property
    def num_labels(self) -> int:
        return len(self.id2label) if self.id2label else 2


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None) -> Tensor:
        T = input_ids.shape[1]
        if T > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"sequence of {T} tokens exceeds BERT's {self.position_embeddings.num_embeddings}"
                " positions; truncate the input (tokenizer truncation=True)"
            )
        positions = torch.arange(T, device=input_ids.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        B, T, C = x.shape
        q, k, v = (
            proj(x).view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)
            for proj in (self.query, self.key, self.value)
        )
        out = attend(q, k, v, mask, dropout_p=self.dropout_p if self.training else 0.0)
        return out.transpose(1, 2).reshape(B, T, C)


class BertResidualOutput(nn.Module):
    """dense -> dropout -> LayerNorm(x + residual): BERT normalises after each sub-layer."""

    def __init__(self, config: BertConfig, d_in: int):
        super().__init__()
        self.dense = nn.Linear(d_in, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertResidualOutput(config, config.hidden_size)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertResidualOutput(config, config.intermediate_size)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        x = self.attention(x, mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))


class BertPooler(nn.Module):
    """tanh(dense(h[CLS])): the sentence vector the NSP and classification heads read."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h: Tensor) -> Tensor:
        return torch.tanh(self.dense(h[:, 0]))


class BertModel(PretrainedModel):
    """The encoder: returns (sequence hidden states [B, T, H], pooled [CLS] vector or None)."""

    config_class = BertConfig

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        x = self.run_layers(self.embeddings(input_ids, token_type_ids), attention_mask)
        return x, self.pooler(x) if self.pooler is not None else None

    def run_layers(self, x: Tensor, attention_mask: Tensor | None = None, start: int = 0,
                   stop: int | None = None) -> Tensor:
        """Hidden states [B, T, H] through layers start..stop-1 only: what a frozen bottom's
        cached output re-enters the top of the encoder through."""
        T = x.shape[1]
        mask = build_attention_mask(attention_mask, T, T, causal=False, dtype=x.dtype,
                                    device=x.device)
        for layer in self.encoder.layer[start:stop]:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, mask, use_reentrant=False)
            else:
                x = layer(x, mask)
        return x


def mean_pool(hidden: Tensor, attention_mask: Tensor | None, normalize: bool = True) -> Tensor:
    """Average the token vectors of real (unpadded) tokens; optionally scale to unit length."""
    if attention_mask is None:
        pooled = hidden.mean(1)
    else:
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return nn.functional.normalize(pooled, dim=-1) if normalize else pooled


class BertLMPredictionHead(nn.Module):
    """dense -> act -> LayerNorm -> vocabulary projection tied to the word embeddings."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform.LayerNorm = LayerNorm(config.hidden_size, config.layer_norm_eps)
        self.act = activation(config.hidden_act)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: Tensor) -> Tensor:
        h = self.transform.LayerNorm(self.act(self.transform.dense(h)))
        return self.decoder(h) + self.bias


class _BertWithHeads(PretrainedModel):
    """Shared plumbing of the task models: a `bert.` backbone plus heads under `cls.`."""

    config_class = BertConfig
    base_model_prefix = "bert"
    ignored_keys = ("cls.predictions.decoder.bias", "position_ids")

    def tied_weights(self) -> dict[str, str]:
        if hasattr(self, "cls") and hasattr(self.cls, "predictions"):
            return {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight"}
        return {}


class BertForMaskedLM(_BertWithHeads):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = nn.Module()
        self.cls.predictions = BertLMPredictionHead(config)
        self.init_weights()
        self.tie_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> Tensor:
        """Vocabulary logits [B, T, vocab] for every position."""
        h, _ = self.bert(input_ids, attention_mask, token_type_ids)
        return self.cls.predictions(h)


class BertForPreTraining(_BertWithHeads):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.cls = nn.Module()
        self.cls.predictions = BertLMPredictionHead(config)
        self.cls.seq_relationship = nn.Linear(config.hidden_size, 2)
        self.init_weights()
        self.tie_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        """(MLM logits [B, T, vocab], next-sentence logits [B, 2]; index 0 = "is next")."""
        h, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.cls.predictions(h), self.cls.seq_relationship(pooled)


class BertForNextSentencePrediction(_BertWithHeads):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.cls = nn.Module()
        self.cls.seq_relationship = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> Tensor:
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.cls.seq_relationship(pooled)


class BertForSequenceClassification(_BertWithHeads):
    """Class logits from one vector per sequence: the pooled [CLS] vector (transformers' head,
    the default) or, with `classifier_pooling="mean"`, the masked mean of the last hidden
    states, with no pooler. transformers reads only the first kind back correctly."""

    def __init__(self, config: BertConfig):
        super().__init__()
        if config.classifier_pooling not in POOLINGS:
            raise ValueError(f"classifier_pooling must be one of {', '.join(POOLINGS)}, "
                             f"not {config.classifier_pooling!r}")
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=config.classifier_pooling == "cls")
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> Tensor:
        hidden, _ = self.bert(input_ids, attention_mask, token_type_ids)
        return self.head(hidden, attention_mask)

    def head(self, hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Last hidden states [B, T, H] -> class logits [B, num_labels]."""
        if self.bert.pooler is not None:
            pooled = self.bert.pooler(hidden)  # tanh(dense(h[CLS])) [B, H]
        else:
            pooled = mean_pool(hidden, attention_mask, normalize=False)  # [B, H]
        return self.classifier(self.dropout(pooled))


register(Family(BertConfig, {"bert": "Bert"},
                {"Model": BertModel, "ForMaskedLM": BertForMaskedLM,
                 "ForPreTraining": BertForPreTraining,
                 "ForNextSentencePrediction": BertForNextSentencePrediction,
                 "ForSequenceClassification": BertForSequenceClassification},
                encoder=True))  # sentence vectors, served on /v1/embeddings
