"""Linear and logistic regression against scikit-learn: same data, same coefficients."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from lmstack.foundations import linear as L


def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_closed_form_matches_least_squares_and_ridge():
    X, y = diabetes()
    ours, ref = L.fit_closed_form(X, y), LinearRegression().fit(X, y)
    np.testing.assert_allclose(ours.coef, ref.coef_, atol=1e-8)
    assert abs(ours.intercept - ref.intercept_) < 1e-8
    ours, ref = L.fit_closed_form(X, y, alpha=10.0), Ridge(alpha=10.0).fit(X, y)
    np.testing.assert_allclose(ours.coef, ref.coef_, atol=1e-8)


def test_gradient_descent_reaches_ridge_and_lasso():
    X, y = diabetes()
    ours = L.fit_gradient_descent(X, y, l2=10.0 / len(X), steps=3000)
    np.testing.assert_allclose(ours.coef, Ridge(alpha=10.0).fit(X, y).coef_, atol=1e-6)
    assert all(b <= a + 1e-9 for a, b in zip(ours.losses, ours.losses[1:]))  # never goes up
    ref = Lasso(alpha=0.5, tol=1e-12, max_iter=100_000).fit(X, y)
    ours = L.fit_gradient_descent(X, y, l1=0.5, steps=3000)
    np.testing.assert_allclose(ours.coef, ref.coef_, atol=1e-6)
    assert np.array_equal(ours.coef == 0, ref.coef_ == 0)  # L1 zeroes the same coefficients
    assert (ours.coef == 0).any()


def test_logistic_regression_matches_sklearn():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X, y)
    ours = L.fit_logistic(X, y, C=1.0)
    np.testing.assert_allclose(ours.coef, ref.coef_.T, atol=1e-5)
    np.testing.assert_allclose(ours.intercept, ref.intercept_, atol=1e-5)
    assert np.array_equal(ours.predict(X).argmax(1), ref.predict(X))


def test_forgetting_to_centre_is_caught(monkeypatch):
    """Without centring, the fit has no intercept: the comparison must notice."""
    X, y = diabetes()
    monkeypatch.setattr(L, "_center", lambda X, y: (X, y, np.zeros(X.shape[1]), 0.0))
    broken = L.fit_closed_form(X, y, alpha=10.0)
    assert np.abs(broken.predict(X) - Ridge(alpha=10.0).fit(X, y).predict(X)).max() > 1.0
