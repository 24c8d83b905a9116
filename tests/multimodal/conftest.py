"""A tiny CLIP and captioner trained for a few seconds on shapes, shared by the session's
multimodal tests (training them once keeps the suite fast)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_captioner(tmp_path_factory):
    from lmstack.multimodal.caption_data import shape_examples
    from lmstack.multimodal.caption_train import train_captioner
    from lmstack.multimodal.caption_vocab import build_caption_tokenizer
    from lmstack.multimodal.captioned import CaptionedImages, shape_pairs
    from lmstack.multimodal.clip_train import small_clip_config, train_clip

    root = tmp_path_factory.mktemp("tiny_clip")
    tokenizer = build_caption_tokenizer(root / "tokenizer")
    images, captions, groups, shapes = shape_pairs(1024, "train", seed=0)
    config = small_clip_config(tokenizer.vocab_size, 16, 3, 4, width=32, layers=1)
    clip, _ = train_clip(CaptionedImages(images, captions, groups, tokenizer), config,
                         root / "clip_run", steps=150, batch=64, lr=3e-3)
    captioner, _ = train_captioner(clip, images[:256], shape_examples(shapes[:256]),
                                   root / "caption_run", steps=150, batch=32, lr=3e-3)
    return captioner
