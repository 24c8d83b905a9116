"""Training-test fixtures live in train_helpers (a unique module name: tests/data has its own)."""

from train_helpers import corpus_file, model_dir, shards_dir, tokenizer_dir  # noqa: F401
