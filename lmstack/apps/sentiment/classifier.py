"""A text classifier: a BERT sequence-classification model, its tokenizer, and how long texts
are cut to the encoder's window. Saved as an HF folder (transformers loads it too) plus
`classifier.json` holding the cut.

Long texts (movie reviews run to ~900 tokens) meet a 128-512-token encoder in one of four
ways, the first three after Sun et al. 2019 ("How to Fine-Tune BERT for Text Classification?"):
  head        the first tokens only;
  head_tail   the first quarter of the window from the start, the rest from the end, where
              reviewers tend to sum up;
  chunks      consecutive windows over the whole text; training draws one at random per
              example, prediction averages the class probabilities of all of them;
  all_chunks  the same windows, all of them every time: the text's logits are the mean of its
              windows' logits, in training (one loss per text) and in prediction alike, so the
              model learns to judge a whole review rather than one random piece of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmstack.fileio import atomic_write_text
from lmstack.models.bert import BertConfig, BertForSequenceClassification

TRUNCATIONS = ("head", "head_tail", "chunks", "all_chunks")
SETTINGS_FILE = "classifier.json"


class TextClassifier:
    """`classify(texts)` -> [{label, probabilities}]: one encoder pass per window."""

    def __init__(self, model: BertForSequenceClassification, tokenizer, max_length: int = 128,
                 truncation: str = "head", batch_size: int = 32) -> None:
        if truncation not in TRUNCATIONS:
            raise ValueError(f"truncation must be one of {', '.join(TRUNCATIONS)}, "
                             f"not {truncation!r}")
        positions = model.config.max_position_embeddings
        if not 8 <= max_length <= positions:
            raise ValueError(f"max_length must be between 8 and the encoder's {positions} "
                             f"positions, not {max_length}")
        if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
            raise ValueError("the tokenizer has no [CLS]/[SEP] tokens; use a BERT tokenizer")
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.truncation, self.batch_size = max_length, truncation, batch_size

    @property
    def labels(self) -> list[str]:
        id2label = self.model.config.id2label or {}
        return [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}")))
                for i in range(self.model.config.num_labels)]

    # ------------------------------------------------------------------ text -> windows
    def windows(self, text: str) -> list[list[int]]:
        """The text's token windows, each `[CLS] ... [SEP]` (several only in the chunk cuts)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        room = self.max_length - 2
        if self.truncation in ("chunks", "all_chunks"):
            pieces = [ids[i:i + room] for i in range(0, max(len(ids), 1), room)]
        elif self.truncation == "head_tail" and len(ids) > room:
            head = room // 4
            pieces = [ids[:head] + ids[len(ids) - (room - head):]]
        else:
            pieces = [ids[:room]]
        cls, sep = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        return [[cls, *piece, sep] for piece in pieces]

    def collate(self, rows: Sequence[list[int]]) -> tuple[Tensor, Tensor]:
        """(input_ids [B, T], attention_mask [B, T]), right-padded to the longest row."""
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
            mask[i, :len(row)] = 1
        return ids, mask

    def logits(self, rows: Sequence[list[int]]) -> Tensor:
        ids, mask = self.collate(rows)
        device = next(self.model.parameters()).device
        return self.model(ids.to(device), mask.to(device))  # [B, num_labels]

    # ------------------------------------------------------------------ prediction
    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities [N, num_labels]; a text cut into windows gets the mean of their
        probabilities (chunks) or the softmax of the mean of their logits (all_chunks)."""
        self.model.eval()
        owner, rows = [], []
        for i, text in enumerate(texts):
            for window in self.windows(text):
                owner.append(i)
                rows.append(window)
        scores = torch.zeros(len(rows), self.model.config.num_labels)  # [W, C]
        order = sorted(range(len(rows)), key=lambda r: len(rows[r]))  # little padding
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            scores[batch] = self.logits([rows[r] for r in batch]).float().cpu()
        if self.truncation == "all_chunks":
            return mean_by_text(scores, owner, len(texts)).softmax(-1).numpy()
        return mean_by_text(scores.softmax(-1), owner, len(texts)).numpy()

    def predict(self, texts: Sequence[str]) -> list[int]:
        return self.predict_proba(texts).argmax(-1).tolist() if texts else []

    def classify(self, texts: Sequence[str]) -> list[dict]:
        labels = self.labels
        return [{"label": labels[int(p.argmax())],
                 "probabilities": {name: float(x) for name, x in zip(labels, p, strict=True)}}
                for p in self.predict_proba(texts)]

    # ------------------------------------------------------------------ folders
    def save(self, folder: str | Path, **provenance) -> Path:
        """Model, tokenizer, and classifier.json: the cut, plus `provenance` (the corpus and
        split seed `eval` needs to find the held-out reviews again)."""
        folder = Path(folder)
        self.model.save_pretrained(folder)
        self.tokenizer.save(folder)
        settings = {"max_length": self.max_length, "truncation": self.truncation, **provenance}
        atomic_write_text(folder / SETTINGS_FILE, json.dumps(settings, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, **overrides) -> TextClassifier:
        """A folder written by `save` (or any BertForSequenceClassification folder)."""
        from lmstack import load

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ValueError(f"{folder} is not a classifier folder (no config.json); train "
                             "one with `lmstack apps sentiment train`")
        model, tokenizer = load(folder)
        if not isinstance(model, BertForSequenceClassification):
            raise ValueError(f"{folder} holds a {type(model).__name__}, not a "  # noqa: TRY004
                             "BertForSequenceClassification; train one with "
                             "`lmstack apps sentiment train`")
        if tokenizer is None:
            raise ValueError(f"{folder} has no tokenizer files")
        settings = {k: v for k, v in read_settings(folder).items()
                    if k in ("max_length", "truncation")}
        return cls(model.eval(), tokenizer, **(settings | overrides))


def mean_by_text(values: Tensor, owner: Sequence[int], n: int) -> Tensor:
    """[W, C] rows of windows -> [n, C], each text the mean of its windows' rows."""
    index = torch.tensor(owner, device=values.device)
    sums = values.new_zeros(n, values.shape[1]).index_add_(0, index, values)
    counts = torch.bincount(index, minlength=n).clamp(min=1)
    return sums / counts[:, None].to(values.dtype)


def read_settings(folder: str | Path) -> dict:
    """classifier.json of a folder, or {} for a plain BertForSequenceClassification folder."""
    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        return {}
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it or retrain") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{path} should hold a JSON object; delete it or retrain")  # noqa: TRY004
    return settings


def classifier_from_encoder(encoder, labels: Sequence[str],
                            pooling: str = "cls") -> BertForSequenceClassification:
    """A fresh classification head on a pretrained encoder (a BertModel, or the `.bert` inside
    a masked-LM): the backbone's weights are copied, the pooler too when it has one and the
    head reads [CLS] (`pooling="mean"` needs none; see BertConfig.classifier_pooling)."""
    backbone = getattr(encoder, "bert", encoder)
    config = BertConfig.from_dict({**backbone.config.to_dict(),
                                   "id2label": dict(enumerate(labels)),
                                   "label2id": {name: i for i, name in enumerate(labels)},
                                   "classifier_pooling": pooling, "architectures": None})
    model = BertForSequenceClassification(config)
    weights = {k: v for k, v in backbone.state_dict().items()
               if pooling == "cls" or not k.startswith("pooler.")}
    missing, unexpected = model.bert.load_state_dict(weights, strict=False)
    if unexpected or any(not k.startswith("pooler.") for k in missing):
        raise ValueError(f"encoder weights do not fit a BERT classifier (missing {missing}, "
                         f"unexpected {unexpected})")
    return model
