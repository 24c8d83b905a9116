"""The re-ranker: batched left-padded scoring equals each prompt alone and a hand computation
(tiny random Llama), the ordering helper, and real SmolLM2 telling a relevant passage from an
unrelated one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmstack.models.llama import LlamaConfig, LlamaForCausalLM
from lmstack.retrieve.rerank import YesNoReranker, reorder
from lmstack.tokenizer import train_bpe_from_iterator

PASSAGES = ["cats purr", "dogs bark at the passage", "a", "Question: does the cat purr or bark"]


@pytest.fixture(scope="module")
def tiny():
    words = "Yes No Passage Question Does the passage answer question Reply with or cats purr"
    tokenizer = train_bpe_from_iterator([words] * 20, vocab_size=300, show_progress=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)).eval()
    return model, tokenizer


def test_batched_scores_equal_each_prompt_alone(tiny):
    model, tokenizer = tiny
    batched = YesNoReranker(model, tokenizer, batch_size=4).rerank("do cats purr", PASSAGES)
    alone = YesNoReranker(model, tokenizer, batch_size=1).rerank("do cats purr", PASSAGES)
    assert batched.shape == (4,)
    np.testing.assert_allclose(batched, alone, atol=1e-4)
    # By hand: the logit of "Yes" minus that of "No" after the unpadded prompt.
    ranker = YesNoReranker(model, tokenizer)
    with torch.inference_mode():
        last = model(torch.tensor([ranker.prompt_ids("do cats purr", PASSAGES[2])]))[0, -1]
    assert batched[2] == pytest.approx(float(last[ranker.yes] - last[ranker.no]), abs=1e-4)


def test_padding_without_the_mask_changes_scores(tiny):
    # The deliberate break: attend to the pads and the short prompts' scores move.
    model, tokenizer = tiny

    class Unmasked(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, ids, mask, positions, **kwargs):
            return self.inner(ids, None, positions, **kwargs)

    good = YesNoReranker(model, tokenizer, batch_size=4).rerank("do cats purr", PASSAGES)
    bad = YesNoReranker(Unmasked(), tokenizer, batch_size=4).rerank("do cats purr", PASSAGES)
    assert np.abs(good - bad).max() > 1e-3


def test_reorder_is_best_first_and_stable():
    class Fixed:
        def rerank(self, query, candidates):
            return np.array([0.1, 0.9, 0.1, 0.5])

    assert reorder(Fixed(), "q", ["a", "b", "c", "d"]) == [1, 3, 0, 2]


def test_a_multi_token_answer_word_is_refused(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="needs it to be one"):
        YesNoReranker(model, tokenizer)._one_token("Maybe not")


def test_smollm2_prefers_the_passage_that_answers(smollm2):
    model, tokenizer, _ = smollm2
    ranker = YesNoReranker(model, tokenizer)
    cases = [
        ("What is the capital of France?",
         ["Paris is the capital and largest city of France.",
          "Bananas are rich in potassium and grow in tropical climates."]),
        ("How many legs does a spider have?",
         ["The stock market fell sharply on Monday after the announcement.",
          "Spiders are arachnids with eight legs and two body segments."]),
    ]
    for query, passages in cases:
        scores = ranker.rerank(query, passages)
        answer = 0 if "Paris" in passages[0] else 1
        assert int(np.argmax(scores)) == answer, (query, scores)
