"""A quantized model as a folder: config.json, model.safetensors (codes, scales and the float
tensors), the tokenizer, and quant_config.json naming each quantized layer's scheme and shape.

The same layout as any lmstack/HF folder plus one file, so `lmstack.load` recognises it (and
`lmstack serve` / `lmstack chat` run it); safetensors only, no pickle.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lmstack.fileio import atomic_write_text
from lmstack.models.hub import ModelLoadError, load_config, load_state_dict, save_model
from lmstack.quant.apply import fuse_quantized, replace_module
from lmstack.quant.linear import QuantLinear
from lmstack.quant.schemes import QuantWeight

QUANT_CONFIG = "quant_config.json"
FORMAT = "lmstack-quant"


def is_quantized_folder(path: str | Path) -> bool:
    return (Path(path) / QUANT_CONFIG).is_file()


def save_quantized(model, tokenizer, folder: str | Path) -> Path:
    """Write `model` (with QuantLinear layers) and `tokenizer` (or None) to `folder`."""
    folder = Path(folder)
    layers = {name: {"scheme": m.scheme, "kind": m.kind, "groups": m.scales.shape[1],
                     "shape": [m.out_features, m.in_features], "bias": m.bias is not None}
              for name, m in model.named_modules() if isinstance(m, QuantLinear)}
    save_model(model, folder)
    if tokenizer is not None:
        tokenizer.save(folder)
    atomic_write_text(folder / QUANT_CONFIG, json.dumps(
        {"format": FORMAT, "version": 1, "layers": layers}, indent=2, sort_keys=True))
    return folder


def _placeholder(spec: dict) -> QuantLinear:
    """A QuantLinear of the right shapes on the meta device (the weights then replace it)."""
    (n, k), g = spec["shape"], spec["groups"]
    int4 = spec["kind"] == "int4"
    q = torch.empty(n, k // 2 if int4 else k, dtype=torch.uint8 if int4 else torch.int8)
    w = QuantWeight(spec["kind"], q, torch.empty(n, g), torch.empty(n, g) if int4 else None,
                    (n, k))
    return QuantLinear(w, torch.empty(n) if spec["bias"] else None, spec["scheme"])


def load_quantized(folder: str | Path):
    """(model, tokenizer or None) from a folder save_quantized wrote."""
    from lmstack.tokenizer import Tokenizer, TokenizerError

    folder = Path(folder)
    try:
        spec = json.loads((folder / QUANT_CONFIG).read_text())
        layers = spec["layers"]
        if spec.get("format") != FORMAT:
            raise ValueError(f"format {spec.get('format')!r}")
    except (ValueError, KeyError, TypeError) as e:
        raise ModelLoadError(f"{folder / QUANT_CONFIG} is not an lmstack quant config ({e}); "
                             "re-write the folder with `lmstack quant`") from None
    config, model_class = load_config(folder)
    with torch.device("meta"):
        model = model_class(config)
        for name, layer in layers.items():
            replace_module(model, name, _placeholder(layer))
    state = load_state_dict(folder)
    tied = {dst: src for dst, src in model.tied_weights().items()
            if dst.rpartition(".")[0] not in layers}  # a quantized head no longer shares
    own = model.state_dict()
    missing = sorted(set(own) - set(state) - set(tied))
    wrong = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    if missing or wrong:
        raise ModelLoadError(f"{folder}: the weights do not match {QUANT_CONFIG} ("
                             f"missing {missing[:3]}, shapes differ for {wrong[:3]}); re-write it")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False, assign=True)
    for dst, src in tied.items():
        owner, _, attr = dst.rpartition(".")
        setattr(model.get_submodule(owner), attr, model.get_parameter(src))
    for m in model.modules():
        if hasattr(m, "reset_buffers"):
            m.reset_buffers()
    fuse_quantized(model)
    try:
        tokenizer = Tokenizer.from_folder(folder)
    except TokenizerError:
        tokenizer = None
    return model.eval(), tokenizer
