"""Checkpoint I/O for Hugging Face model folders: config.json plus (sharded) safetensors weights.

Our on-disk format *is* HF's, so a folder saved here loads in `transformers` and vice versa.
Pickle checkpoints (pytorch_model.bin) are read only through torch's `weights_only` loader,
which refuses arbitrary code. Which class a folder needs, and its checkpoint quirks, come
from models/registry.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lmstack.fileio import atomic_write, atomic_write_text
from lmstack.models import registry

if TYPE_CHECKING:  # base.py calls into this module; a runtime import back would be a circle
    from lmstack.models.base import PretrainedModel

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
SAFE_INDEX = "model.safetensors.index.json"
PICKLE_INDEX = "pytorch_model.bin.index.json"


class ModelLoadError(ValueError):
    """A model folder that cannot be loaded; the message says what is wrong and how to fix it."""


def read_config(folder: str | Path) -> dict:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"{folder} is not a folder; pass a model folder holding config.json")
    path = folder / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{folder} has no config.json; is this a Hugging Face model folder?")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path} is not valid JSON ({e}); fix or re-download it") from None
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path} holds a JSON {type(config).__name__}, not an object")
    return config


def load_config(folder: str | Path, model_class: type[PretrainedModel] | None = None):
    """(config dataclass, model class) for a folder; the class comes from `architectures`
    through the registry unless `model_class` is given."""
    raw = read_config(folder)
    try:
        if model_class is None:
            arch = registry.resolve(raw)
            config, model_class = arch.config_from_dict(raw), arch.model_class
        else:
            config = model_class.config_class.from_dict(raw)
    except registry.UnknownArchitecture as e:
        raise ModelLoadError(str(e)) from None
    except (TypeError, ValueError) as e:
        raise ModelLoadError(f"{Path(folder) / 'config.json'}: {e}") from None
    return config, model_class


def _inside(folder: Path, name: str, named_by: Path) -> Path:
    """folder/name resolved, refusing a name or symlink that leads outside the model folder
    (a downloaded folder must not make us read, say, a file of the user's home)."""
    real = (folder / name).resolve()
    if folder.resolve() not in real.parents:
        shown = name if named_by.name != name else real
        raise ModelLoadError(f"{named_by} points outside its folder ({shown}); refusing")
    return real


def _load_shard(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelLoadError(
                f"{path} is not a readable safetensors file ({e}); re-download or re-save it"
            ) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means we refuse the pickle
        raise ModelLoadError(
            f"refusing {path}: it is a pickle that torch's weights_only loader rejects "
            f"({unpickling_reason(e)}); convert it to safetensors with a tool you trust"
        ) from None


def unpickling_reason(error: Exception) -> str:
    """The one useful sentence of torch's multi-paragraph weights_only error, which also
    suggests retrying with weights_only=False: advice we must not pass on."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    _, found, detail = text.partition("WeightsUnpickler error:")
    reason = (detail if found else text).strip().split("\n")[0].split(". ")[0]
    return " ".join(reason.split()) or type(error).__name__


def load_state_dict(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a folder: model.safetensors, a sharded index, or a weights_only pickle."""
    folder = Path(folder)
    for index_name in (SAFE_INDEX, PICKLE_INDEX):
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                if not all(isinstance(v, str) for v in weight_map.values()):
                    raise TypeError
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise ModelLoadError(
                    f"{index} is not a valid index (JSON with a weight_map from tensor names to "
                    "shard files); re-download or re-save the model"
                ) from None
            state: dict[str, torch.Tensor] = {}
            for shard in sorted(set(weight_map.values())):
                shard_path = _inside(folder, shard, index)
                if not shard_path.is_file():
                    raise ModelLoadError(f"{index} lists {shard}, which is missing; re-download it")
                state.update(_load_shard(shard_path))
            return state
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return _load_shard(_inside(folder, name, folder / name))
    raise ModelLoadError(
        f"{folder} has no weights (model.safetensors, {SAFE_INDEX} or pytorch_model.bin)"
    )


def _align_keys(
    state: dict[str, torch.Tensor], model: PretrainedModel
) -> tuple[dict[str, torch.Tensor], bool]:
    """Rename checkpoint keys onto ours: drop ignored keys, add or strip the backbone prefix,
    and transpose Conv1D weights. Also says whether the checkpoint was a bare backbone."""
    ours = set(model.state_dict())
    family = registry.family_of(model)  # quirks hold for every head of the family
    state = {k: v for k, v in state.items()
             if not any(("." + k).endswith("." + s) for s in family.ignored_keys)}
    prefix = model.base_model_prefix
    backbone_only = bool(prefix) and not any(k.startswith(prefix + ".") for k in state)
    if backbone_only:
        # A bare backbone checkpoint loading into a model with a head.
        state = {(f"{prefix}.{k}" if f"{prefix}.{k}" in ours else k): v for k, v in state.items()}
    elif not (ours & set(state)):
        # A checkpoint with a head loading into a bare backbone: find the prefix to strip.
        for cand in {k.split(".", 1)[0] for k in state if "." in k}:
            stripped = {k[len(cand) + 1:]: v for k, v in state.items() if k.startswith(cand + ".")}
            if ours & set(stripped):
                state = stripped
                break
    for k in list(state):
        if family.transposes(k):
            state[k] = state[k].t().contiguous()
    return state, backbone_only


def _check_keys(state: dict, model: PretrainedModel, folder: Path, backbone_only: bool) -> None:
    expected = set(model.state_dict()) - set(model.tied_weights())
    if backbone_only:  # the task head is new: it will be initialised, not loaded
        expected = {k for k in expected if k.startswith(model.base_model_prefix + ".")}
    missing = sorted(expected - set(state))
    modules = {name for name, _ in model.named_modules()}
    # A whole sub-module we lack (e.g. a pooler or another task's head) is fine to skip;
    # extra tensors inside a module we have (more layers than config says) are not.
    unexpected = sorted(k for k in set(state) - expected - set(model.tied_weights())
                        if ".".join(k.split(".")[:2]) in modules)
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs config {tuple(v.shape)}"
        for k, v in model.state_dict().items() if k in state and state[k].shape != v.shape
    )
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} weights (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected weights (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"shape mismatch: {'; '.join(shapes[:3])}")
    if problems:
        raise ModelLoadError(
            f"config.json and the weights in {folder} disagree: {'; '.join(problems)}. "
            "Check that config.json belongs to these weights."
        )


def read_weights_for(model: PretrainedModel, folder: str | Path) -> dict[str, torch.Tensor]:
    """A folder's tensors under `model`'s own key names and layouts, checked against its shapes:
    what `model.load_state_dict(..., strict=False)` takes (tied copies and a new head omitted)."""
    folder = Path(folder)
    state, backbone_only = _align_keys(load_state_dict(folder), model)
    _check_keys(state, model, folder, backbone_only)
    own = model.state_dict()
    return {k: v for k, v in state.items() if k in own}


def load_model(
    folder: str | Path,
    dtype: torch.dtype | str | None = None,
    device=None,
    model_class: type[PretrainedModel] | None = None,
) -> PretrainedModel:
    """Build the model that config.json describes and fill it with the folder's weights.

    dtype defaults to the checkpoint's `torch_dtype`. The model is built on the meta device,
    so no time or memory goes into random initialisation that the weights then overwrite.
    """
    folder = Path(folder)
    config, model_class = load_config(folder, model_class)
    if isinstance(dtype, str):
        dtype = DTYPES[dtype]
    dtype = dtype or DTYPES.get(str(config.torch_dtype), torch.float32)
    with torch.device("meta"):
        model = model_class(config)
    state = read_weights_for(model, folder)
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()  # re-point tied parameters at the loaded (no longer meta) tensors
    # Head weights absent from a backbone-only checkpoint (rare: starting a fine-tune) take
    # the usual random init, from a freshly built model.
    meta = [n for n, p in model.named_parameters() if p.is_meta]
    if meta:
        fresh = dict(model_class(config).named_parameters())
        model.load_state_dict({n: fresh[n] for n in meta}, strict=False, assign=True)
        model.tie_weights()
    for m in model.modules():
        if hasattr(m, "reset_buffers"):
            m.reset_buffers()
    model.config.torch_dtype = str(dtype).removeprefix("torch.")
    return model.to(device=device, dtype=dtype).eval()


def save_model(
    model: PretrainedModel, folder: str | Path, max_shard_bytes: int | None = None
) -> None:
    """Write config.json and safetensors weights (sharded above `max_shard_bytes`) to `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tied = model.tied_weights()
    family = registry.family_of(model)
    state = {k: (v.detach().cpu().t() if family.transposes(k) else v.detach().cpu()).contiguous()
             for k, v in model.state_dict().items() if k not in tied}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, v in state.items():
        nbytes = v.numel() * v.element_size()
        if max_shard_bytes and shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += nbytes
    meta = {"format": "pt"}
    written = {"config.json"}
    if len(shards) == 1:
        atomic_write(folder / "model.safetensors", lambda p: save_file(shards[0], p, meta))
        written.add("model.safetensors")
    else:
        n = len(shards)
        weight_map: dict[str, str] = {}
        for i, shard in enumerate(shards, 1):
            name = f"model-{i:05d}-of-{n:05d}.safetensors"
            atomic_write(folder / name, lambda p, s=shard: save_file(s, p, meta))
            weight_map.update(dict.fromkeys(shard, name))
            written.add(name)
        total = sum(v.numel() * v.element_size() for v in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        atomic_write_text(folder / SAFE_INDEX, json.dumps(index, indent=2))
        written.add(SAFE_INDEX)
    config = model.config
    config.torch_dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    cfg = config.to_dict()
    cfg["architectures"] = [registry.name_of(model)]
    atomic_write_text(folder / "config.json", json.dumps(cfg, indent=2, sort_keys=True))
    _remove_stale_weights(folder, written)


def _remove_stale_weights(folder: Path, written: set[str]) -> None:
    """Delete weights an earlier save left that the new ones do not replace: an old index
    would win over the new model.safetensors when loading, and old shards are dead bytes.
    Runs after the new files are complete, so a crash never leaves a folder without weights."""
    stale = [folder / SAFE_INDEX, folder / PICKLE_INDEX, folder / "model.safetensors",
             folder / "pytorch_model.bin", *folder.glob("model-*-of-*.safetensors"),
             *folder.glob("pytorch_model-*-of-*.bin")]
    for path in stale:
        if path.name not in written and (path.is_file() or path.is_symlink()):
            path.unlink()
