"""The captioner: only the answer is trained on, greedy answers follow the prompt's language,
a folder round-trips, and a few seconds of training already answer colour questions."""

from __future__ import annotations

import numpy as np
import torch

from lmstack.data.mlm import IGNORE_INDEX
from lmstack.multimodal.caption_data import PromptAnswers, encode_example
from lmstack.multimodal.caption_train import Captioner, evaluate_shape_captions
from lmstack.multimodal.shapes import make_shapes


def test_labels_cover_only_the_answer(tiny_captioner):
    tok = tiny_captioner.clip.tokenizer
    data = PromptAnswers(torch.zeros(2, 5, 8), [(0, "what shape is it?", "square"),
                                                (1, "describe the image", "a red circle")], tok)
    batch = data.batch([0, 1])
    ids, n_prompt = encode_example(tok, "what shape is it?", "square")
    assert batch["input_ids"][0, :len(ids) - 1].tolist() == ids[:-1]
    targets = batch["labels"][0][batch["labels"][0] != IGNORE_INDEX].tolist()
    assert targets == [tok.token_to_id("square"), tok.sep_token_id]
    assert (batch["labels"][0, :n_prompt - 1] == IGNORE_INDEX).all()


def test_answers_colour_questions_and_round_trips(tiny_captioner, tmp_path):
    images, shapes = make_shapes(120, seed=60, split="train")
    scores = evaluate_shape_captions(tiny_captioner, images, shapes)
    assert scores["en_qa_colour"] > 0.6 and scores["zh_qa_colour"] > 0.6   # chance: 0.25
    again = Captioner.load(tiny_captioner.save(tmp_path / "captioner"))
    assert again.describe(images[:5], "zh") == tiny_captioner.describe(images[:5], "zh")
    assert all(not any(c.isascii() and c.isalpha() for c in t)
               for t in tiny_captioner.describe(images[:5], "zh"))
    assert tiny_captioner.unknown_words("what colour is the hexagon?") == ["hexagon"]
    assert np.isfinite(scores["en_bleu4"])
