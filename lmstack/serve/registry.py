"""The models one server hosts, by name: a generator (behind an engine) or an encoder.

Follows the OpenAI API's model list (`GET /v1/models`), with one object per served name.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ModelEntry:
    """One served model. Give `engine` (an `Engine`, or an `AsyncEngine` you own) for text
    generation, or `encoder` (a `BertModel`) for embeddings; `tokenizer` either way.
    """

    name: str
    tokenizer: Any
    engine: Any = None
    encoder: Any = None
    max_model_len: int | None = None
    path: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    # Filled in by the app at start-up: the AsyncEngine that serves `engine`.
    async_engine: Any = field(default=None, repr=False)
    owns_async_engine: bool = field(default=False, repr=False)
    # Encoders are not re-entrant-friendly on a small CPU: one forward at a time.
    encode_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if (self.engine is None) == (self.encoder is None):
            raise ValueError(f"model {self.name!r}: give exactly one of engine= (text "
                             "generation) or encoder= (embeddings)")
        if self.tokenizer is None:
            raise ValueError(f"model {self.name!r} has no tokenizer; save one into its folder "
                             "(lmstack tokenizer train ... --out FOLDER)")
        if self.max_model_len is None:
            inner = getattr(self.engine, "engine", self.engine)
            self.max_model_len = (getattr(inner, "max_model_len", None)
                                  or getattr(self._model_config, "max_position_embeddings", None)
                                  or 2048)

    @property
    def _model_config(self) -> Any:
        # The engine may be an AsyncEngine around an Engine; the model sits on the inner one.
        inner = getattr(self.engine, "engine", self.engine)
        model = self.encoder if self.encoder is not None else getattr(inner, "model", None)
        return getattr(model, "config", None)

    @property
    def kind(self) -> str:
        return "generate" if self.engine is not None else "embed"

    def stats(self) -> dict[str, Any]:
        """The engine's counters (waiting, running, ...); empty for encoders."""
        source = self.async_engine or self.engine
        if source is None:
            return {}
        stats = source.stats
        return dict(stats() if callable(stats) else stats)

    @property
    def vocab_size(self) -> int:
        """Ids a prompt may hold: the model's embedding rows (the tokenizer may have fewer)."""
        size = getattr(self._model_config, "vocab_size", None)
        return int(size) if size else len(self.tokenizer)

    @functools.cached_property
    def max_token_chars(self) -> int:
        """Characters the longest vocabulary entry spells (an upper bound per token: byte-level
        entries are at least as long as the text they decode to)."""
        vocab = self.tokenizer.get_vocab() if hasattr(self.tokenizer, "get_vocab") else {}
        return max((len(token) for token in vocab), default=64)

    @property
    def adapters(self) -> list[str]:
        """The LoRA adapters its engine serves, each reachable as model `name:adapter`."""
        inner = getattr(self.engine, "engine", self.engine)
        adapters = getattr(inner, "adapters", None)
        return adapters.names if adapters is not None else []

    def card(self) -> dict[str, Any]:
        """The OpenAI model object, plus what a client needs to size its requests."""
        return {"id": self.name, "object": "model", "created": self.created,
                "owned_by": "lmstack", "max_model_len": self.max_model_len,
                "capabilities": ["completions", "chat"] if self.kind == "generate"
                else ["embeddings"]}

    def cards(self) -> list[dict[str, Any]]:
        """Its card, then one per adapter (as vLLM lists LoRA modules, with `parent`)."""
        return [self.card()] + [{**self.card(), "id": f"{self.name}:{a}", "parent": self.name}
                                for a in self.adapters]


@dataclass
class ServerState:
    """What every route needs: the models by name, the API key, the metrics."""

    models: dict[str, ModelEntry]
    api_key: str | None = None
    metrics: Any = None

    def get(self, name: str, kind: str) -> ModelEntry:
        """The entry serving `name` for an endpoint of `kind` ("generate" or "embed"), or the
        OpenAI-shaped error a client should see."""
        from lmstack.serve.errors import invalid, model_not_found

        entry = self.models.get(name)
        if entry is None:  # perhaps `model:adapter`
            base, _, adapter = name.rpartition(":")
            entry = self.models.get(base)
            if entry is None or adapter not in entry.adapters:
                raise model_not_found(name, sorted(self.cards()))
        if entry.kind != kind:
            where = "/v1/embeddings" if entry.kind == "embed" else \
                "/v1/completions and /v1/chat/completions"
            raise invalid(f"The model `{name}` does not support this endpoint; it serves "
                          f"{where}.", "model", "model_not_supported")
        return entry


    def cards(self) -> dict[str, dict[str, Any]]:
        """The model object of every name a request may use: models and `model:adapter`s."""
        return {c["id"]: c for e in self.models.values() for c in e.cards()}


def adapter_of(requested: str, entry: ModelEntry) -> str | None:
    """The adapter a request's `model` names (`base:adapter`), None for the base itself."""
    return None if requested == entry.name else requested[len(entry.name) + 1:]


def _architecture(folder: Path) -> str:
    from lmstack.models.hub import read_config

    archs = read_config(folder).get("architectures") or [""]
    return archs[0]


def load_entry(path: str | Path, name: str | None = None, *, dtype: Any = None,
               tokenizer: Any = None, max_queue: int | None = 256,
               adapters: dict[str, str | Path] | None = None,
               **engine_kwargs: Any) -> ModelEntry:
    """Load a model folder, a GGUF file or a short name (`smollm2`) and wrap it for serving;
    the name defaults to the short name, the file's stem or the folder's name.

    The tokenizer comes with the model unless given. max_queue bounds the engine's waiting
    line: past it a request gets 503 at once rather than waiting unboundedly (a client that
    times out would leave work behind that nobody reads). Other engine_kwargs go to `Engine`
    (max_num_seqs, max_model_len, num_blocks, ...). `adapters` ({name: PEFT LoRA folder})
    are served beside the base as `name:adapter`, all in one continuous batch.
    """
    import lmstack
    from lmstack.models import BertModel, load_model
    from lmstack.models.default import model_name, resolve_model_path
    from lmstack.models.registry import is_encoder
    from lmstack.quant.folder import is_quantized_folder
    from lmstack.tokenizer import Tokenizer

    folder = resolve_model_path(path)  # a missing short-name package: one line to install it
    name = name or model_name(path)
    if folder.suffix.lower() == ".gguf" or is_quantized_folder(folder):
        # GGUF holds decoders only, as do quantized folders (lmstack.quant): no encoder branch.
        model, own_tokenizer = lmstack.load(folder, dtype=dtype)
        tokenizer = tokenizer or own_tokenizer
    else:
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder} is not a model folder (no config.json) or GGUF "
                                    "file; pass a Hugging Face model folder (e.g. one written "
                                    "by the trainer), a .gguf file or smollm2")
        architecture = _architecture(folder)  # first: a broken config.json is the error to report
        tokenizer = tokenizer or Tokenizer.from_folder(folder)
        if is_encoder(architecture):  # sentence vectors, not text: served on /v1/embeddings
            encoder = load_model(folder, dtype=dtype, model_class=BertModel)
            return ModelEntry(name, tokenizer, encoder=encoder, path=str(folder))
        model = load_model(folder, dtype=dtype)
    from lmstack.adapt.multi_lora import load_adapters
    from lmstack.engine import Engine

    multi = load_adapters(model, adapters.items()) if adapters else None
    engine = Engine(model, tokenizer, max_queue=max_queue, column_major=True, adapters=multi,
                    **engine_kwargs)
    return ModelEntry(name, tokenizer, engine=engine, path=str(folder))


def load_entries(paths: list[str | Path], names: list[str] | None = None,
                 **kwargs: Any) -> dict[str, ModelEntry]:
    """Several models, each under its own name (see load_entry unless `names` are given)."""
    names = list(names or [])
    if names and len(names) != len(paths):
        raise ValueError(f"got {len(names)} --name for {len(paths)} model folders; give one "
                         "name per folder, in the same order")
    entries: dict[str, ModelEntry] = {}
    for i, path in enumerate(paths):
        entry = load_entry(path, names[i] if names else None, **kwargs)
        if entry.name in entries:
            raise ValueError(f"two models would both be served as {entry.name!r}; use --name "
                             "to tell them apart")
        entries[entry.name] = entry
    return entries
