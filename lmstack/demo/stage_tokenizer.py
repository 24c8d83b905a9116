"""Demo stage `tokenizer`: a byte-level BPE trained on the corpus, saved to OUT/tokenizer.

Follows GPT-2's byte-level BPE (trained by the `tokenizers` library, as tokenizer/bpe.py does).
"""

from __future__ import annotations

import time
from typing import Any

from lmstack.demo.registry import Stage

SAMPLE = "Return the number of items in a container. 你好，世界 🙂"


def stage_tokenizer(run: Any) -> None:
    from lmstack.tokenizer import train_bpe

    opts = run.settings("tokenizer", {"vocab_size": 4096})
    t0 = time.perf_counter()
    tok = train_bpe([run.artifacts["corpus"]], vocab_size=opts["vocab_size"],
                    show_progress=False)
    folder = run.out / "tokenizer"
    tok.save(folder)
    run.artifacts["tokenizer"] = folder
    ids = tok.encode(SAMPLE)
    roundtrip = "decodes back exactly" if tok.decode(ids) == SAMPLE else \
        "does NOT decode back exactly (a bug: please report it)"
    run.section("Tokenizer", f"Byte-level BPE, vocab {tok.vocab_size}, trained in "
                f"{time.perf_counter() - t0:.1f}s. `{SAMPLE}` → {len(ids)} tokens, {roundtrip}.")


STAGE = Stage("tokenizer", 20, stage_tokenizer, "byte-level BPE on the corpus",
              needs=("corpus",))
