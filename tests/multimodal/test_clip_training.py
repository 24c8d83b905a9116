"""A small CLIP trained by the Trainer learns what the captions say, in both languages; it
saves and loads as a folder with its tokenizer; the caption tokenizer is one token per English
word and Chinese character."""

from __future__ import annotations

import torch

from lmstack.multimodal.caption_vocab import build_caption_tokenizer, join_text
from lmstack.multimodal.clip_train import evaluate_shapes
from lmstack.multimodal.image_text import ImageTextModel
from lmstack.multimodal.retrieval_metrics import recall_at_k
from lmstack.multimodal.shapes import make_shapes


def test_caption_tokenizer_words_and_characters(tmp_path):
    tok = build_caption_tokenizer(tmp_path)
    assert tok.tokenize("a red circle at the top left") == ["a", "red", "circle", "at", "the", "top", "left"]
    assert tok.tokenize("左上角的红色圆形") == list("左上角的红色圆形")
    ids = tok("左上角的红色圆形")["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id == 3  # CLIP pools at 3
    assert join_text(tok.decode(ids, skip_special_tokens=True)) == "左上角的红色圆形"
    assert tok.unk_token in tok.tokenize("a purple hexagon")


def test_recall_at_k_by_hand():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    keys = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2]])
    # query 0's order: keys 0, 2, 1; query 1's: 1, 2, 0.
    got = recall_at_k(queries, [7, 7], keys, [5, 7, 7], ks=(1, 2))
    assert got == {1: 0.5, 2: 1.0}


def test_tiny_clip_learns_colour_in_both_languages(tiny_captioner):
    images, shapes = make_shapes(200, seed=50, split="train")
    scores = evaluate_shapes(tiny_captioner.clip, images, shapes)
    assert scores["en_colour"] > 0.6 and scores["zh_colour"] > 0.6   # chance: 0.25


def test_folder_round_trip_and_text_seam(tiny_captioner, tmp_path):
    clip = tiny_captioner.clip
    again = ImageTextModel.load(clip.save(tmp_path / "clip"))
    texts = ["a red circle at the top left", "右下角的蓝色正方形"]
    emb = clip.encode_text(texts)
    assert emb.shape == (2, clip.model.config.projection_dim)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.equal(emb, again.encode_text(texts))
    images, _ = make_shapes(3, seed=1)
    assert torch.equal(clip.encode_images(images), again.encode_images(images))
