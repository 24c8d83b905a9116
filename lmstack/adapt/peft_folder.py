"""A Hugging Face PEFT adapter folder on disk: `adapter_config.json` + `adapter_model.safetensors`,
written atomically and read with a clear error (the format only; peft_files maps models to it).

Follows PEFT's save_pretrained / from_pretrained: the config is plain JSON, the weights one
safetensors file whose keys carry no adapter name.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import Tensor

from lmstack.fileio import atomic_write, atomic_write_text

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
# Fields every adapter_config.json written here has, as PEFT writes them for a causal LM.
COMMON = {"task_type": "CAUSAL_LM", "base_model_name_or_path": None, "modules_to_save": None,
          "inference_mode": True}


def write_adapter(folder: str | Path, config: dict, tensors: dict[str, Tensor]) -> Path:
    """Write config (over COMMON's fields) and tensors as a PEFT folder, each file atomically."""
    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    atomic_write_text(folder / CONFIG, json.dumps({**COMMON, **config}, indent=2) + "\n")
    return folder


def check_adapter_folder(folder: str | Path) -> Path:
    """The folder, if it holds a PEFT adapter's two files; else a clear error (before any
    model loads, so a typo fails at once)."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise FileNotFoundError(f"{folder} is not a PEFT adapter folder (it needs {CONFIG} and "
                                f"{WEIGHTS}); save one with save_adapter or PEFT's save_pretrained")
    return folder


def read_adapter(folder: str | Path) -> tuple[dict, dict[str, Tensor]]:
    """(adapter_config.json, tensors) of a PEFT folder, with a clear error for a wrong one."""
    folder = check_adapter_folder(folder)
    return json.loads((folder / CONFIG).read_text(encoding="utf-8")), load_file(folder / WEIGHTS)
