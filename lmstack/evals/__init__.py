"""Evaluations shared by the stack: perplexity, multiple-choice by log-likelihood (as
lm-evaluation-harness scores it), generative multiple choice, arithmetic word problems."""

from lmstack.evals.loglikelihood import encode_pair, loglikelihoods
from lmstack.evals.multiple_choice import (
    MCQuestion,
    choice_metrics,
    evaluate_mc,
    few_shot_pool,
    load_questions,
)
from lmstack.evals.perplexity import perplexity, text_perplexity
from lmstack.evals.stats import wilson_interval

__all__ = ["MCQuestion", "choice_metrics", "encode_pair", "evaluate_mc", "few_shot_pool",
           "load_questions", "loglikelihoods", "perplexity", "text_perplexity",
           "wilson_interval"]
