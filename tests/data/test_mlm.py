"""BERT masking: about 15% of tokens selected, of those about 80% [MASK] / 10% random / 10% kept;
next-sentence pairs: half random, real pairs are contiguous."""

from __future__ import annotations

import torch

from lmstack.data import IGNORE_INDEX, build_nsp_examples, mask_tokens, split_sentences

MASK, VOCAB = 3, 1000


def test_masking_statistics():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, VOCAB, (200, 512), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True  # [CLS] ... [SEP] never get selected
    inputs, labels = mask_tokens(ids, MASK, VOCAB, special, 0.15, g)
    selected = labels != IGNORE_INDEX
    assert not selected[special].any()
    assert abs(selected.float().mean().item() * 512 / 510 - 0.15) < 0.005
    n = selected.sum().item()
    masked = (inputs == MASK) & selected
    kept = (inputs == ids) & selected
    random = selected & ~masked & ~kept
    assert abs(masked.sum().item() / n - 0.8) < 0.01
    assert abs(kept.sum().item() / n - 0.1) < 0.01  # (random may equal the original: ~0.1%)
    assert abs(random.sum().item() / n - 0.1) < 0.01
    assert torch.equal(labels[selected], ids[selected])
    assert torch.equal(inputs[~selected], ids[~selected])  # unselected tokens never change


def test_masking_is_reproducible_from_the_seed():
    ids = torch.randint(10, VOCAB, (4, 64))
    a = mask_tokens(ids, MASK, VOCAB, generator=torch.Generator().manual_seed(5))
    b = mask_tokens(ids, MASK, VOCAB, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_nsp_pairs():
    # Documents of numbered "sentences": sentence j of doc d is [d*1000 + j] * 5.
    docs = [[[d * 1000 + j] * 5 for j in range(40)] for d in range(20)]
    examples = build_nsp_examples(docs, max_len=64, seed=0)
    labels = [label for _, _, label in examples]
    assert 0.4 < sum(labels) / len(labels) < 0.6
    for a, b, label in examples:
        assert len(a) + len(b) <= 61 and a and b
        if label == 0:  # B continues A within the same document
            assert b[0] // 1000 == a[-1] // 1000 and b[0] % 1000 == a[-1] % 1000 + 1
    assert split_sentences("One. Two! 三。四？") == ["One.", "Two!", "三。", "四？"]
