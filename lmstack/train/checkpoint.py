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
STATE_KEYS = ("step", "tokens_seen", "optimizer", "scheduler", "scaler", "sampler", "rng",
              "world_size")
SUMMARY_FILE = "trainer_state.json"
PREFIX = "step-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message is one line naming it and the fix."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint whose files are unreadable (truncated, corrupted, or hostile)."""


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
    """The trainer state of a checkpoint, through torch's weights_only (no-pickle-code) loader;
    DamagedCheckpoint when the file is unreadable or holds anything else."""
    from lmstack.models.hub import unpickling_reason

    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {STATE_FILE}; is it a training checkpoint?")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, corrupted or a hostile pickle: all refused
        raise DamagedCheckpoint(f"{path} is damaged or not a trainer state "
                                f"({unpickling_reason(e)}); resume from another checkpoint "
                                "or start fresh") from None
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        raise DamagedCheckpoint(f"{path} does not hold a trainer state (expected the keys "
                                f"{', '.join(STATE_KEYS)}); resume from another checkpoint")
    return state


def check_same_model(folder: Path, state: dict[str, Any], model: dict[str, Any]) -> None:
    """Refuse to resume into a changed model section (as dumped from TrainConfig.model) with
    one line naming what changed, instead of a wall of shape mismatches later."""
    then = (state.get("config") or {}).get("model") or model
    changes = []
    if then.get("architecture") != model["architecture"]:
        changes.append(f"model.architecture {then.get('architecture')} -> {model['architecture']}")
    before, after = then.get("config") or {}, model["config"]
    changes += [f"model.config.{k} {before.get(k)} -> {after.get(k)}"
                for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    if changes:
        raise CheckpointError(
            f"checkpoint {folder.name} was written for a different model config "
            f"({'; '.join(changes)}); resume with the config it was trained with, or train "
            "into a new training.out_dir")


def clean_temporaries(root: str | Path) -> None:
    """Remove half-written checkpoint folders a killed run left behind."""
    root = Path(root)
    if root.is_dir():
        for p in root.glob(".tmp-*"):
            shutil.rmtree(p, ignore_errors=True)
