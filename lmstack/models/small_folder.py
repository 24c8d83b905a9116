"""A small model's folder: config.json beside model.safetensors, each written atomically.

What lmstack's own image models (the CNNs, the CLIP, the captioner) save, so a crash mid-save
never leaves a half-written file behind, and the folder loads with `weights_only`-safe
safetensors alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from lmstack.fileio import atomic_write, atomic_write_text


def save_small_folder(folder: str | Path, config: dict[str, Any], model: nn.Module) -> Path:
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "config.json", json.dumps(config, indent=2))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic_write(folder / "model.safetensors", lambda tmp: save_file(state, tmp))
    return folder
