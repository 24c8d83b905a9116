"""Applications built from lmstack's parts: each a folder with its logic and its CLI."""
