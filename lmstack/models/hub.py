"""Read and write Hugging Face model folders: config.json plus (sharded) safetensors weights.

Our on-disk format *is* HF's, so a folder saved here loads in `transformers` and vice versa.
Pickle checkpoints (pytorch_model.bin) are read only through torch's `weights_only` loader,
which refuses arbitrary code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lmstack.fileio import atomic_write, atomic_write_text
from lmstack.models.base import PretrainedModel
from lmstack.models.bert import (
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
)
from lmstack.models.gpt2 import GPT2LMHeadModel, GPT2Model
from lmstack.models.llama import LlamaForCausalLM, LlamaModel

ARCHITECTURES: dict[str, type[PretrainedModel]] = {
    "LlamaForCausalLM": LlamaForCausalLM,
    "Qwen2ForCausalLM": LlamaForCausalLM,
    "MistralForCausalLM": LlamaForCausalLM,
    "LlamaModel": LlamaModel,
    "Qwen2Model": LlamaModel,
    "MistralModel": LlamaModel,
    "GPT2LMHeadModel": GPT2LMHeadModel,
    "GPT2Model": GPT2Model,
    "BertModel": BertModel,
    "BertForMaskedLM": BertForMaskedLM,
    "BertForPreTraining": BertForPreTraining,
    "BertForNextSentencePrediction": BertForNextSentencePrediction,
    "BertForSequenceClassification": BertForSequenceClassification,
}
# The architecture used when config.json names none.
DEFAULT_ARCHITECTURE = {
    "llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM",
    "gpt2": "GPT2LMHeadModel", "bert": "BertModel",
}
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


def resolve_architecture(config: dict) -> tuple[str, type[PretrainedModel]]:
    archs = config.get("architectures") or []
    for name in archs:
        if name in ARCHITECTURES:
            return name, ARCHITECTURES[name]
    model_type = config.get("model_type")
    if not archs and model_type in DEFAULT_ARCHITECTURE:
        name = DEFAULT_ARCHITECTURE[model_type]
        return name, ARCHITECTURES[name]
    raise ModelLoadError(
        f"unknown architecture {archs or model_type!r}; lmstack supports "
        f"{', '.join(sorted(ARCHITECTURES))}"
    )


def load_config(folder: str | Path, model_class: type[PretrainedModel] | None = None):
    """(config dataclass, model class) for a folder; the class comes from `architectures`."""
    raw = read_config(folder)
    if model_class is None:
        _, model_class = resolve_architecture(raw)
    try:
        return model_class.config_class.from_dict(raw), model_class
    except (TypeError, ValueError) as e:
        raise ModelLoadError(f"{Path(folder) / 'config.json'}: {e}") from None


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
            f"({_unpickling_reason(e)}); convert it to safetensors with a tool you trust"
        ) from None


def _unpickling_reason(error: Exception) -> str:
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
                shard_path = (folder / shard).resolve()
                if folder.resolve() not in shard_path.parents:
                    raise ModelLoadError(f"{index} points outside its folder ({shard}); refusing")
                if not shard_path.is_file():
                    raise ModelLoadError(f"{index} lists {shard}, which is missing; re-download it")
                state.update(_load_shard(shard_path))
            return state
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return _load_shard(folder / name)
    raise ModelLoadError(
        f"{folder} has no weights (model.safetensors, {SAFE_INDEX} or pytorch_model.bin)"
    )


def _align_keys(
    state: dict[str, torch.Tensor], model: PretrainedModel
) -> tuple[dict[str, torch.Tensor], bool]:
    """Rename checkpoint keys onto ours: drop ignored keys, add or strip the backbone prefix,
    and transpose Conv1D weights. Also says whether the checkpoint was a bare backbone."""
    ours = set(model.state_dict())
    state = {k: v for k, v in state.items()
             if not any(("." + k).endswith("." + s) for s in model.ignored_keys)}
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
        if k.endswith(model.transposed_weights) and model.transposed_weights:
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
    state, backbone_only = _align_keys(load_state_dict(folder), model)
    _check_keys(state, model, folder, backbone_only)
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own}
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
    state = {k: v.detach().cpu() for k, v in model.state_dict().items() if k not in tied}
    state = {
        k: (v.t() if model.transposed_weights and k.endswith(model.transposed_weights) else v)
        .contiguous()
        for k, v in state.items()
    }
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
    if len(shards) == 1:
        atomic_write(folder / "model.safetensors", lambda p: save_file(shards[0], p, meta))
    else:
        n = len(shards)
        weight_map = {}
        for i, shard in enumerate(shards, 1):
            name = f"model-{i:05d}-of-{n:05d}.safetensors"
            atomic_write(folder / name, lambda p, s=shard: save_file(s, p, meta))
            weight_map.update(dict.fromkeys(shard, name))
        total = sum(v.numel() * v.element_size() for v in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        atomic_write_text(folder / SAFE_INDEX, json.dumps(index, indent=2))
    config = model.config
    config.torch_dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    cfg = config.to_dict()
    cfg["architectures"] = [_architecture_name(model)]
    atomic_write_text(folder / "config.json", json.dumps(cfg, indent=2, sort_keys=True))


def _architecture_name(model: PretrainedModel) -> str:
    name = type(model).__name__
    model_type = model.config.model_type
    if name.startswith("Llama") and model_type != "llama":
        return name.replace("Llama", {"qwen2": "Qwen2", "mistral": "Mistral"}[model_type])
    return name
