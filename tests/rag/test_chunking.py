"""Chunkers: every chunk's span slices back to its text, no chunk is over the size, and cuts
fall where a reader would put them (headings, paragraphs, Chinese sentence ends)."""

from __future__ import annotations

import pytest

from lmstack.rag.chunking import fixed_chunks, recursive_chunks

MARKDOWN = """# Install

Run the installer. It asks two questions! Answer both.

Then restart the machine.

## Configure

Edit the file config.yaml and set the port. The default is 8000, which is fine for tests.
"""

CHINESE = "今天天气很好。我们去公园散步！你想一起去吗？公园里有很多花；花都开了。"


def check_spans(text, chunks, size, length=len):
    assert chunks, "expected at least one chunk"
    for c in chunks:
        assert text[c.start:c.end] == c.text
        assert length(c.text) <= size
        assert c.text == c.text.strip() and c.text


@pytest.mark.parametrize("size,overlap", [(10, 0), (10, 3), (25, 5), (1, 0)])
def test_fixed_chars_spans_size_and_overlap(size, overlap):
    chunks = fixed_chunks(MARKDOWN, size, overlap)
    check_spans(MARKDOWN, chunks, size)
    # Together the windows cover every non-space character of the document.
    covered = set()
    for c in chunks:
        covered |= set(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(MARKDOWN) if not ch.isspace())


def test_fixed_overlap_is_shared_text():
    text = "abcdefghijklmnopqrstuvwxyz"
    chunks = fixed_chunks(text, 10, 4)
    assert [c.text for c in chunks] == ["abcdefghij", "ghijklmnop", "mnopqrstuv", "stuvwxyz"]


def test_fixed_by_tokens():
    # A whitespace tokenizer stands in for a real one: `length` counts its tokens.
    def tokens(s):
        return len(s.split())
    text = " ".join(f"w{i}" for i in range(23))
    chunks = fixed_chunks(text, 5, 2, length=tokens)
    check_spans(text, chunks, 5, tokens)
    assert chunks[0].text == "w0 w1 w2 w3 w4"
    assert chunks[1].text.startswith("w3 w4")  # two tokens shared
    assert chunks[-1].text.endswith("w22")


def test_recursive_cuts_at_headings_and_paragraphs():
    chunks = recursive_chunks(MARKDOWN, 80)
    check_spans(MARKDOWN, chunks, 80)
    # The first section is over 80 characters, so it is cut at its blank line; the heading
    # starts a chunk of its own; "config.yaml" is no sentence end (no space after the dot).
    assert [c.text for c in chunks] == [
        "# Install\n\nRun the installer. It asks two questions! Answer both.",
        "Then restart the machine.",
        "## Configure\n\nEdit the file config.yaml and set the port.",
        "The default is 8000, which is fine for tests.",
    ]


def test_recursive_chinese_splits_at_sentence_ends():
    chunks = recursive_chunks(CHINESE, 8)
    check_spans(CHINESE, chunks, 8)
    assert [c.text for c in chunks] == ["今天天气很好。", "我们去公园散步！", "你想一起去吗？",
                                        "公园里有很多花；", "花都开了。"]


def test_recursive_packs_short_sentences_together():
    chunks = recursive_chunks(CHINESE, 16)
    check_spans(CHINESE, chunks, 16)
    assert chunks[0].text == "今天天气很好。我们去公园散步！"
    assert all(c.text[-1] in "。！？；" for c in chunks)


def test_recursive_overlap_repeats_last_sentence():
    chunks = recursive_chunks(CHINESE, 16, overlap=8)
    check_spans(CHINESE, chunks, 16)
    assert chunks[1].text.startswith("我们去公园散步！")


def test_recursive_falls_back_to_characters():
    text = "x" * 50
    chunks = recursive_chunks(text, 12)
    check_spans(text, chunks, 12)
    assert "".join(c.text for c in chunks) == text


def test_bad_sizes_refused():
    with pytest.raises(ValueError):
        fixed_chunks("abc", 0)
    with pytest.raises(ValueError):
        recursive_chunks("abc", 5, overlap=5)


def test_by_real_tokens(minilm_folder):
    # The embedding model's own WordPiece tokenizer: chunks then fit its context as counted
    # by the model that will embed them.
    from lmstack.tokenizer.tokenizer import Tokenizer

    tok = Tokenizer.from_folder(minilm_folder)

    def tokens(s):
        return len(tok.encode(s, add_special_tokens=False))
    text = MARKDOWN * 3
    for chunks in (fixed_chunks(text, 12, 4, length=tokens),
                   recursive_chunks(text, 12, 4, length=tokens)):
        check_spans(text, chunks, 12, tokens)
        assert max(tokens(c.text) for c in chunks) >= 9  # windows are filled, not tiny
