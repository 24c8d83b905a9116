"""Whole architectures, one file per family, with Hugging Face weight names."""

from lmstack.models.bert import (
    BertConfig,
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    mean_pool,
)
from lmstack.models.gpt2 import GPT2Config, GPT2LMHeadModel, GPT2Model
from lmstack.models.hub import ModelLoadError, load_config, load_model, save_model
from lmstack.models.llama import LlamaConfig, LlamaForCausalLM, LlamaModel
from lmstack.models.registry import ARCHITECTURES, Architecture, Family, UnknownArchitecture
from lmstack.models.t5 import T5Config, T5ForConditionalGeneration  # registers T5

__all__ = [
    "ARCHITECTURES", "Architecture", "BertConfig", "BertForMaskedLM",
    "BertForNextSentencePrediction", "BertForPreTraining", "BertForSequenceClassification",
    "BertModel", "Family", "GPT2Config", "GPT2LMHeadModel", "GPT2Model", "LlamaConfig",
    "LlamaForCausalLM", "LlamaModel", "ModelLoadError", "UnknownArchitecture", "load_config",
    "load_model", "mean_pool", "save_model",
]
__all__ += ["T5Config", "T5ForConditionalGeneration"]
