"""A captioner (frozen CLIP + prefix decoder) that describes images and answers questions
about them: training with the Trainer, saving as a folder, and scoring on held-out images.

Scores: exact match and corpus BLEU (4-grams; 3 for the three-word digit captions) of the
greedy caption against the template caption (tokens: English words, Chinese characters), per
language; Q&A accuracy per question type.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lmstack.multimodal.bleu import corpus_bleu
from lmstack.multimodal.caption_data import PrefixLM, PromptAnswers
from lmstack.multimodal.caption_vocab import DESCRIBE, join_text
from lmstack.multimodal.captioner import CaptionerConfig, PrefixCaptioner
from lmstack.multimodal.image_text import ImageTextModel
from lmstack.multimodal.shapes import Shape, digit_caption

QUESTION_TYPES = ("colour", "shape", "position")  # the order of Shape.questions


@torch.no_grad()
def image_tokens(clip: ImageTextModel, images: np.ndarray | Tensor) -> Tensor:
    """The frozen vision tower's states [B, tokens, dim] (class token + patches, or the CNN's
    feature map): what the decoder reads."""
    return clip.model.vision_model(clip.pixels(images))[0]


class Captioner:
    def __init__(self, clip: ImageTextModel, decoder: PrefixCaptioner):
        self.clip, self.decoder = clip, decoder.eval()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.clip.image_shape

    def unknown_words(self, text: str) -> list[str]:
        """Words of `text` outside the vocabulary (they would all read as [UNK])."""
        return self.clip.unknown_words(text)

    def answer(self, images: np.ndarray | Tensor, prompt: str) -> list[str]:
        """Greedy answer to one prompt (a question, or DESCRIBE[lang]) for each image."""
        prompt_ids = torch.tensor(self.clip.tokenizer(prompt)["input_ids"])
        ids = self.decoder.generate(image_tokens(self.clip, images), prompt_ids)
        return [join_text(self.clip.tokenizer.decode(a, skip_special_tokens=True)) for a in ids]

    def describe(self, images: np.ndarray | Tensor, lang: str = "en") -> list[str]:
        return self.answer(images, DESCRIBE[lang])

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        self.clip.save(folder / "clip")
        self.decoder.save_pretrained(folder / "decoder")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> Captioner:
        folder = Path(folder)
        if not (folder / "clip").is_dir() or not (folder / "decoder").is_dir():
            raise FileNotFoundError(f"{folder} is not a captioner folder: it needs clip/ and "
                                    "decoder/ (train one with benchmarks/clip.py or lmstack demo)")
        return cls(ImageTextModel.load(folder / "clip"),
                   PrefixCaptioner.from_pretrained(folder / "decoder"))


def train_captioner(clip: ImageTextModel, images: np.ndarray, examples, out: str | Path,
                    steps: int, batch: int = 128, lr: float = 2e-3,
                    minutes: float | None = None, seed: int = 0
                    ) -> tuple[Captioner, dict[str, Any]]:
    from lmstack.multimodal.clip_train import image_train_config
    from lmstack.train.trainer import Trainer

    """Train the decoder (CLIP stays frozen) on (image index, prompt, answer) examples."""
    torch.manual_seed(seed)
    feats = image_tokens(clip, images)       # once for all images: the tower does not change
    decoder = PrefixCaptioner(CaptionerConfig(clip.tokenizer.vocab_size, feats.shape[2],
                                              feats.shape[1]))
    tc = image_train_config(out, steps, batch, lr, minutes, seed)
    summary = Trainer(decoder, PrefixLM(), PromptAnswers(feats, examples, clip.tokenizer),
                      tc).fit()
    return Captioner(clip, decoder), summary


def caption_scores(captioner: Captioner, images: np.ndarray, references: dict[str, list[str]],
                   max_n: int = 4) -> dict[str, float]:
    """Exact match and BLEU-`max_n` per language; references: lang -> one caption per image."""
    result = {}
    tokenize = captioner.clip.tokenizer.tokenize
    for lang, refs in references.items():
        hyps = captioner.describe(images, lang)
        result[f"{lang}_exact"] = float(np.mean([h == r for h, r in zip(hyps, refs)]))
        result[f"{lang}_bleu{max_n}"] = corpus_bleu([tokenize(h) for h in hyps],
                                                    [tokenize(r) for r in refs], max_n)
    return {k: round(v, 4) for k, v in result.items()}


def evaluate_shape_captions(captioner: Captioner, images: np.ndarray, shapes: Sequence[Shape]
                            ) -> dict[str, float]:
    """Caption scores, plus Q&A accuracy per question type and language."""
    result = caption_scores(captioner, images,
                            {lang: [s.caption(lang) for s in shapes] for lang in ("en", "zh")})
    for lang in ("en", "zh"):
        for t, kind in enumerate(QUESTION_TYPES):
            question = shapes[0].questions(lang)[t][0]   # the same wording for every shape
            got = captioner.answer(images, question)
            truth = [s.questions(lang)[t][1] for s in shapes]
            result[f"{lang}_qa_{kind}"] = round(float(np.mean(
                [g == a for g, a in zip(got, truth)])), 4)
    return result


def evaluate_digit_captions(captioner: Captioner, images: np.ndarray, labels: np.ndarray
                            ) -> dict[str, float]:
    """Exact match and BLEU-3: "a handwritten seven" has no 4-grams, so BLEU-4 would be 0."""
    return caption_scores(captioner, images, {lang: [digit_caption(int(d), lang) for d in labels]
                                              for lang in ("en", "zh")}, max_n=3)
