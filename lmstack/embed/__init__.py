"""Sentence embeddings from encoder models: pooling, normalisation, batching."""

from lmstack.embed.embedder import Embedder, pool

__all__ = ["Embedder", "pool"]
