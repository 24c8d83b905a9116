"""Many threads share one Tokenizer (a server tokenises every request through it): plain
encodes need no lock, and padded/truncated calls never leak their settings into them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

from lmstack.tokenizer import Tokenizer

TEXTS = ["The quick brown fox.", "你好，世界！今天天气很好。", "def add(a, b): return a + b",
         "Emoji 🙂🚀 and café " * 8]


def _tokenizer(folder) -> Tokenizer:
    tok = Tokenizer.from_folder(folder)
    if tok.pad_token_id is None:
        tok.config.special_tokens["pad_token"] = tok.eos_token or "<|endoftext|>"
    return tok


def test_plain_encode_does_not_wait_for_a_padded_call(trained_folder):
    tok = _tokenizer(trained_folder)
    want = tok.encode(TEXTS[1])
    with ThreadPoolExecutor(1) as pool:
        with tok._lock:  # as if a padded call were in progress on another thread
            single = pool.submit(tok.encode, TEXTS[1])
            batch = pool.submit(tok.encode_batch, TEXTS)
            done, _ = wait([single, batch], timeout=10)
        # (the lock is released before asserting, so a failure cannot leave the thread stuck)
        assert len(done) == 2, "plain encode waited for the padding lock"
        assert single.result() == want and batch.result()[1] == want


def test_padded_calls_and_plain_encodes_in_threads_never_mix(trained_folder):
    tok = _tokenizer(trained_folder)
    plain = [tok.encode(t) for t in TEXTS]
    shaped = tok(TEXTS, padding="max_length", truncation=True, max_length=12)["input_ids"]
    assert all(len(row) == 12 for row in shaped) and any(len(p) < 12 for p in plain)

    def work(i: int) -> bool:
        if i % 2:
            return tok(TEXTS, padding="max_length", truncation=True,
                       max_length=12)["input_ids"] == shaped
        return [tok.encode(t) for t in TEXTS] == plain and tok.encode_batch(TEXTS) == plain

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(400)))
    assert tok.encode(TEXTS[0]) == plain[0]  # the shared backend was never left padded
