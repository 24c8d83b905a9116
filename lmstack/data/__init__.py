"""Data for training: token shards on disk, packing, a resumable sampler, MLM/NSP batches."""

from lmstack.data.mlm import (
    IGNORE_INDEX,
    MLMSequences,
    NSPPairs,
    SpecialIds,
    build_nsp_examples,
    mask_tokens,
    split_sentences,
)
from lmstack.data.sampler import ResumableSampler
from lmstack.data.shards import PackedSequences, TokenShards, prepare_shards, token_dtype

__all__ = [
    "IGNORE_INDEX", "MLMSequences", "NSPPairs", "PackedSequences", "ResumableSampler",
    "SpecialIds", "TokenShards", "build_nsp_examples", "mask_tokens", "prepare_shards",
    "split_sentences", "token_dtype",
]
