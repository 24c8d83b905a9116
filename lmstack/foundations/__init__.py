"""The machine-learning basics as small numpy files: regression, trees, clustering, PCA, backprop.

Each file follows one textbook method and is held against scikit-learn or torch.optim by
tests/foundations/; `lmstack learn` runs them side by side with the reference.
"""
