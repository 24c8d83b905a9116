"""`lmstack apps sentiment train|eval|serve`: the sentiment app on the command line.

train  fine-tunes a classifier on a corpus's training split and saves it as a folder;
eval   scores it on the held-out split beside the TF-IDF + logistic-regression baseline;
serve  answers POST /v1/classify (and shows a classify box on the web page).
Heavy imports (torch) happen inside the commands, so `lmstack --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

sentiment_app = typer.Typer(no_args_is_help=True, help="Sentiment analysis: fine-tune BERT "
                            "on reviews, compare with TF-IDF, serve /v1/classify.")
console = Console()

INIT_HELP = ("where the encoder starts: minilm (the packaged all-MiniLM-L6-v2, English), "
             "pretrain (a small Chinese BERT pretrained here with masked LM first), scratch "
             "(the same small BERT, random), or a BERT folder with its tokenizer")


def _say(line: str) -> None:
    console.print(line, highlight=False)


@sentiment_app.command()
def train(
    corpus: str = typer.Option(..., help="chnsenticorp (Chinese hotels) or movie_reviews "
                               "(English films)"),
    out: Path = typer.Option(..., help="folder to save the classifier into"),
    data: Path | None = typer.Option(None, help="the corpus file (default: "
                                     "../shared/data/classification/...)"),
    init: str | None = typer.Option(None, help=INIT_HELP + "; default minilm for English, "
                                    "pretrain for Chinese"),
    pretrain_file: list[Path] | None = typer.Option(
        None, help="extra Chinese text for --init pretrain (repeat it); the training split's "
        "reviews are always used, the held-out ones never"),
    pretrain_steps: int | None = typer.Option(None, help="masked-LM steps for --init pretrain"),
    epochs: float | None = typer.Option(None, help="passes over the training split"),
    lr: float | None = typer.Option(None, help="peak learning rate"),
    batch_size: int | None = typer.Option(None, help="examples per step"),
    max_length: int | None = typer.Option(None, help="tokens per window, [CLS] and [SEP] "
                                          "included"),
    truncation: str | None = typer.Option(None, help="long texts: head, head_tail, chunks "
                                          "(one random window a step) or all_chunks (every "
                                          "window, their logits averaged)"),
    pooling: str | None = typer.Option(None, help="what the head reads: cls (the pooled [CLS] "
                                       "vector) or mean (the mean of all token vectors)"),
    freeze_layers: int | None = typer.Option(None, help="keep this many bottom encoder layers "
                                             "frozen (their output is computed once); 0 "
                                             "trains them all"),
    limit: int | None = typer.Option(None, help="train on this many examples only (a quick "
                                     "try)"),
    max_steps: int | None = typer.Option(None, help="stop after this many steps"),
    seed: int = typer.Option(0, help="the held-out split, shuffling and init"),
) -> None:
    """Fine-tune a BERT classifier on a corpus's training split (80%, seeded, stratified).

    Options left out take the language's recipe (lmstack/apps/sentiment/recipes.py)."""
    from dataclasses import replace

    import torch

    from lmstack.apps.sentiment.classifier import TextClassifier, classifier_from_encoder
    from lmstack.apps.sentiment.corpora import LABELS, load_corpus, sample, stratified_split
    from lmstack.apps.sentiment.finetune import finetune
    from lmstack.apps.sentiment.recipes import RECIPES
    from lmstack.models.bert import POOLINGS

    if pooling is not None and pooling not in POOLINGS:
        raise ValueError(f"--pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    if freeze_layers is not None and freeze_layers < 0:
        raise ValueError("--freeze-layers must be 0 (train every layer) or more")
    reviews = load_corpus(corpus, data)
    given = {"init": init, "pretrain_steps": pretrain_steps, "epochs": epochs, "lr": lr,
             "batch_size": batch_size, "max_length": max_length, "truncation": truncation,
             "pooling": pooling, "freeze_layers": freeze_layers}
    r = replace(RECIPES[reviews.language], **{k: v for k, v in given.items() if v is not None})
    if r.epochs <= 0 or r.lr <= 0 or r.batch_size < 1:
        raise ValueError("--epochs, --lr and --batch-size must be positive")
    if r.init == "pretrain" and r.pretrain_steps < 1:
        raise ValueError("--pretrain-steps must be at least 1 with --init pretrain")
    train_rows, _ = stratified_split(reviews.labels, seed=seed)
    train_set = reviews.subset(sample(train_rows, limit, seed))
    encoder, tokenizer = _encoder(r.init, train_set.texts, pretrain_file or [],
                                  r.pretrain_steps, seed)
    torch.manual_seed(seed)  # the head's init
    classifier = TextClassifier(classifier_from_encoder(encoder, LABELS, r.pooling), tokenizer,
                                r.max_length, r.truncation)
    frozen = f", layers 1-{r.freeze_layers} frozen" if r.freeze_layers else ""
    _say(f"fine-tuning on {len(train_set.texts)} {corpus} reviews from {r.init} "
         f"({r.epochs} epochs, lr {r.lr}, {r.truncation} cut of {r.max_length} tokens, "
         f"{r.pooling} pooling{frozen})")
    finetune(classifier, train_set.texts, train_set.labels, epochs=r.epochs, lr=r.lr,
             batch_size=r.batch_size, seed=seed, max_steps=max_steps,
             freeze_layers=r.freeze_layers, log=_say)
    classifier.save(out, corpus=corpus, seed=seed, init=r.init)
    _say(f"saved to {out}; score it with: lmstack apps sentiment eval {out}")


def _encoder(init: str, texts: list[str], extra_files: list[Path], steps: int, seed: int):
    """(encoder, tokenizer) to put the classification head on."""
    if init == "scratch":
        from lmstack.apps.sentiment.zh_encoder import SMALL, char_tokenizer, char_vocab
        from lmstack.models.bert import BertConfig, BertModel

        tokenizer = char_tokenizer(char_vocab(texts))
        return BertModel(BertConfig(vocab_size=len(tokenizer), **SMALL)), tokenizer
    if init == "pretrain":
        from lmstack.apps.sentiment.zh_encoder import pretrain_chinese_bert

        corpus = list(texts)
        for path in extra_files:
            if not path.is_file():
                raise ValueError(f"--pretrain-file {path} not found")
            corpus += [line for line in path.read_text(encoding="utf-8").splitlines()
                       if line.strip()]
        _say(f"pretraining a small Chinese BERT ({steps} masked-LM steps, "
             f"{len(corpus)} lines of text)")
        model, tokenizer, _ = pretrain_chinese_bert(corpus, steps=steps, seed=seed, log=_say)
        return model, tokenizer
    import lmstack

    model, tokenizer = lmstack.load(init)  # a folder, or the short name minilm
    if tokenizer is None:
        raise ValueError(f"{init} has no tokenizer files; pass a BERT folder with its vocab")
    return model, tokenizer


@sentiment_app.command(name="eval")
def evaluate(
    folder: Path = typer.Argument(..., help="a classifier folder from `train`"),
    data: Path | None = typer.Option(None, help="the corpus file (default: "
                                     "../shared/data/classification/...)"),
    limit: int | None = typer.Option(None, help="score this many held-out examples only"),
    baseline: bool = typer.Option(True, help="also fit and score TF-IDF + logistic "
                                  "regression on the same split"),
) -> None:
    """Accuracy and macro-F1 on the held-out 20% the classifier never saw in training."""
    from lmstack.apps.sentiment.baseline import baseline_predictions
    from lmstack.apps.sentiment.classifier import TextClassifier, read_settings
    from lmstack.apps.sentiment.corpora import load_corpus, sample, stratified_split
    from lmstack.apps.sentiment.scores import report

    classifier = TextClassifier.load(folder)
    settings = read_settings(folder)
    if "corpus" not in settings:
        raise ValueError(f"{folder}/classifier.json does not say which corpus it was trained "
                         "on; train it with `lmstack apps sentiment train`")
    reviews = load_corpus(settings["corpus"], data)
    train_rows, test_rows = stratified_split(reviews.labels, seed=settings.get("seed", 0))
    test = reviews.subset(sample(test_rows, limit))
    scores = {"classifier": report(test.labels, classifier.predict(test.texts))}
    if baseline:
        train_set = reviews.subset(train_rows)
        scores["tf-idf + logistic regression"] = report(test.labels, baseline_predictions(
            reviews.language, train_set.texts, train_set.labels, test.texts))
    table = Table(title=f"{reviews.name}: {len(test.texts)} held-out reviews")
    for column in ("model", "accuracy", "macro-F1"):
        table.add_column(column)
    for name, s in scores.items():
        table.add_row(name, f"{s['accuracy']:.4f}", f"{s['macro_f1']:.4f}")
    console.print(table)


@sentiment_app.command()
def serve(
    folder: Path = typer.Argument(..., help="a classifier folder from `train`"),
    name: str = typer.Option("sentiment", help="the model name clients send"),
    host: str = typer.Option("127.0.0.1", help="interface; 0.0.0.0 exposes it to the network"),
    port: int = typer.Option(8000, help="TCP port"),
) -> None:
    """Serve POST /v1/classify (texts -> labels + probabilities) and the web page at /."""
    from lmstack.apps.sentiment.classifier import TextClassifier
    from lmstack.serve import create_app
    from lmstack.serve import serve as run_server

    classifier = TextClassifier.load(folder)
    _say(f"{name}: {', '.join(classifier.labels)}   page: http://{host}:{port}/   "
         f"API: POST http://{host}:{port}/v1/classify")
    run_server(create_app({}, classifiers={name: classifier}), host=host, port=port)
