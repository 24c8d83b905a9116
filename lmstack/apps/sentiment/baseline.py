"""The baseline every neural model must beat: TF-IDF features + logistic regression.

Words (1-2-grams) for English; character 1-3-grams for Chinese, which has no spaces to split
on and whose characters carry most of the meaning (the usual choice, e.g. Li et al. 2018).
"""

from __future__ import annotations

from collections.abc import Sequence


def tfidf_logreg(language: str, seed: int = 0):
    """An unfitted scikit-learn pipeline; `.fit(texts, labels)`, then `.predict(texts)`."""
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
    except ImportError:
        raise ValueError("the TF-IDF baseline needs scikit-learn: "
                         "pip install scikit-learn") from None
    if language == "zh":
        features = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2,
                                   sublinear_tf=True)
    else:
        features = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    return make_pipeline(features, LogisticRegression(C=10.0, max_iter=2000,
                                                      random_state=seed))


def baseline_predictions(language: str, train_texts: Sequence[str], train_labels: Sequence[int],
                         test_texts: Sequence[str], seed: int = 0) -> list[int]:
    model = tfidf_logreg(language, seed).fit(list(train_texts), list(train_labels))
    return [int(y) for y in model.predict(list(test_texts))]
