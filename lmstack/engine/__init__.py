"""Inference: a paged KV cache, sampling, a continuous-batching scheduler and streaming.

`Engine` is synchronous and single-threaded; `AsyncEngine` runs it on a background thread for
servers. `generate` is the plain static-cache decoder the parity tests use.
"""

from lmstack.engine.async_engine import AsyncEngine
from lmstack.engine.engine import Engine, merge_outputs
from lmstack.engine.params import EngineFullError, RequestOutput, SamplingParams

__all__ = ["AsyncEngine", "Engine", "EngineFullError", "RequestOutput", "SamplingParams",
           "merge_outputs"]
