"""Inference: a paged KV cache, sampling, a continuous-batching scheduler and streaming.

`Engine` is synchronous and single-threaded; `AsyncEngine` runs it on a background thread for
servers; `EngineChatModel` serves the ChatModel protocol in-process. The plain static-cache
decoder the parity tests use is one floor down, in lmstack.models.generate.
"""

from lmstack.engine.async_engine import AsyncEngine
from lmstack.engine.chat_model import EngineChatModel
from lmstack.engine.engine import Engine, merge_outputs
from lmstack.engine.params import EngineFullError, RequestOutput, SamplingParams
from lmstack.engine.precision import probe_inference_dtype

__all__ = ["AsyncEngine", "Engine", "EngineChatModel", "EngineFullError", "RequestOutput",
           "SamplingParams", "merge_outputs", "probe_inference_dtype"]
