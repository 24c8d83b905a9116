"""Checkpoints as Hugging Face folders plus `trainer_state.pt`, written atomically, last N kept.

Follows transformers' Trainer layout (checkpoint folders holding the model, tokenizer and
trainer state) with the write-then-rename discipline of crash-safe databases: a folder named
step-NNNNNNN is always complete, whatever moment a `kill -9` arrives.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
SUMMARY_FILE = "trainer_state.json"
PREFIX = "step-"


def rng_state() -> dict[str, Any]:
    """Every random stream training can touch, as plain values torch's weights_only load takes."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"{PREFIX}{step:07d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under root, oldest first (temp folders of a killed save ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX)
             and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def save_checkpoint(
    root: str | Path,
    step: int,
    save_model,
    state: dict[str, Any],
    tokenizer: Any = None,
    keep_last: int = 2,
    summary: dict[str, Any] | None = None,
) -> Path:
    """Write root/step-NNNNNNN: `save_model(folder)` writes config + weights, then tokenizer
    files and the trainer state; the folder gets its final name only once all are on disk."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(root, step)
    tmp = root / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(tmp)
    if tokenizer is not None:
        tokenizer.save(tmp)
    torch.save(state, tmp / STATE_FILE)
    info = {"step": step, **(summary or {})}
    (tmp / SUMMARY_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    _fsync_tree(tmp)
    if final.exists():  # re-saving a step after a resume: replace the old copy
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(root)[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_tree(folder: Path) -> None:
    # A rename is only as durable as the data before it: flush file contents to disk first,
    # so a power cut cannot leave a complete-looking folder of empty files.
    for p in folder.iterdir():
        with p.open("rb") as f:
            os.fsync(f.fileno())


def load_state(folder: str | Path) -> dict[str, Any]:
    """The trainer state of a checkpoint, through torch's weights_only (no-pickle-code) loader."""
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {STATE_FILE}; is it a training checkpoint?")
    return torch.load(path, map_location="cpu", weights_only=True)


def clean_temporaries(root: str | Path) -> None:
    """Remove half-written checkpoint folders a killed run left behind."""
    root = Path(root)
    if root.is_dir():
        for p in root.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
