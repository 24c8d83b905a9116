"""Evaluations shared by the stack: perplexity (and, later, multiple-choice and retrieval)."""

from lmstack.evals.perplexity import perplexity, text_perplexity

__all__ = ["perplexity", "text_perplexity"]
