"""The one list of architectures: HF names ("Qwen2ForCausalLM"), their classes and checkpoint quirks.

Follows transformers' auto classes (`architectures` / `model_type` in config.json pick the
class), kept as plain data: each model file registers its family (config class, name prefixes,
heads, quirks) once at its end; importing `lmstack.models` imports them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmstack.models.config import ModelConfig

if TYPE_CHECKING:  # model files import this module to register themselves, not the reverse
    from lmstack.models.base import PretrainedModel


class UnknownArchitecture(ValueError):
    """An architecture name or model_type lmstack has no class for; the message lists ours."""


@dataclass(frozen=True)
class Family:
    """Models sharing one config class and one checkpoint layout.

    An architecture's HF name is a prefix (chosen by the config's model_type) plus a head
    suffix: model_type "qwen2" and head "ForCausalLM" give "Qwen2ForCausalLM". The quirks
    apply to every class of the family, backbone included.
    """

    config_class: type[ModelConfig]
    prefixes: dict[str, str]  # model_type -> name prefix
    heads: dict[str, type[PretrainedModel]]  # suffix -> class; the first is the default
    # Linear weights stored as [in, out] in HF checkpoints (GPT-2's Conv1D).
    transposed_weights: tuple[str, ...] = ()
    # Keys some checkpoints carry that hold no parameters of ours (old causal-mask buffers).
    ignored_keys: tuple[str, ...] = ()
    encoder: bool = False  # produces sentence vectors (served on /v1/embeddings), not text

    def transposes(self, key: str) -> bool:
        return bool(self.transposed_weights) and key.endswith(self.transposed_weights)


@dataclass(frozen=True)
class Architecture:
    name: str
    model_class: type[PretrainedModel]
    model_type: str
    family: Family = field(repr=False)

    def config_from_dict(self, raw: dict[str, Any]) -> ModelConfig:
        """The config dataclass for `raw` (config.json's keys); model_type and architectures
        default to this architecture's."""
        config = self.family.config_class.from_dict({"model_type": self.model_type, **raw})
        config.architectures = config.architectures or [self.name]
        return config

    def build(self, config: ModelConfig | dict[str, Any]) -> PretrainedModel:
        """A freshly initialised model (build under `torch.device("meta")` to skip the init)."""
        if isinstance(config, dict):
            config = self.config_from_dict(config)
        return self.model_class(config)


ARCHITECTURES: dict[str, Architecture] = {}
_DEFAULT: dict[str, Architecture] = {}  # model_type -> the architecture used when none is named
_FAMILY_OF_CONFIG: dict[type[ModelConfig], Family] = {}


def register(family: Family) -> None:
    """Add a family's architectures; a model file calls this once, after its classes."""
    _FAMILY_OF_CONFIG[family.config_class] = family
    for model_type, prefix in family.prefixes.items():
        for i, (suffix, cls) in enumerate(family.heads.items()):
            arch = Architecture(prefix + suffix, cls, model_type, family)
            ARCHITECTURES[arch.name] = arch
            if i == 0:
                _DEFAULT[model_type] = arch


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise UnknownArchitecture(f"unknown architecture {name!r}; lmstack supports "
                                  f"{', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name]


def for_model_type(model_type: str, head: str | None = None) -> Architecture:
    """The architecture of a model_type ("qwen2"), with the family's default head unless
    `head` ("Model", "ForCausalLM") names another; how GGUF import picks its class."""
    if model_type not in _DEFAULT:
        raise UnknownArchitecture(f"unknown model_type {model_type!r}; lmstack supports "
                                  f"{', '.join(sorted(_DEFAULT))}")
    arch = _DEFAULT[model_type]
    if head is None:
        return arch
    return architecture(arch.family.prefixes[model_type] + head)


def resolve(config: dict[str, Any]) -> Architecture:
    """The architecture config.json asks for: its first known `architectures` entry, else the
    default of its `model_type` when it names no architecture at all."""
    names = config.get("architectures") or []
    for name in names:
        if isinstance(name, str) and name in ARCHITECTURES:
            return ARCHITECTURES[name]
    model_type = config.get("model_type")
    if not names and isinstance(model_type, str) and model_type in _DEFAULT:
        return _DEFAULT[model_type]
    raise UnknownArchitecture(f"unknown architecture {names or model_type!r}; lmstack "
                              f"supports {', '.join(sorted(ARCHITECTURES))}")


def family_of(model: PretrainedModel | type[ModelConfig]) -> Family:
    """The family of a model (or config class), whatever head it has and however wrapped."""
    config_class = model if isinstance(model, type) else type(model.config)
    for cls in config_class.__mro__:
        if cls in _FAMILY_OF_CONFIG:
            return _FAMILY_OF_CONFIG[cls]
    raise UnknownArchitecture(f"{config_class.__name__} belongs to no registered family")


def name_of(model: PretrainedModel) -> str:
    """The HF architecture name to write into config.json for this model."""
    family = family_of(model)
    for cls in type(model).__mro__:  # FSDP wraps models in a generated subclass
        for suffix, head in family.heads.items():
            if head is cls:
                return family.prefixes[model.config.model_type] + suffix
    raise UnknownArchitecture(f"{type(model).__name__} is not a registered architecture")


def is_encoder(name: str) -> bool:
    return name in ARCHITECTURES and ARCHITECTURES[name].family.encoder
