"""Sentiment analysis, the roadmap's first project: fine-tune a BERT encoder to label reviews
positive or negative, score it against a TF-IDF + logistic-regression baseline, serve it.

`lmstack apps sentiment train|eval|serve`; the pieces: corpora.py (data and the held-out
split), classifier.py (model + tokenizer + truncation), finetune.py (the training loop),
frozen.py (frozen bottom layers, their output cached), recipes.py (each language's settings),
zh_encoder.py (a small Chinese BERT pretrained here), baseline.py and scores.py.
"""
