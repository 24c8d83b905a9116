"""Store and index in step on real files: re-ingest adds nothing, an edit replaces a file's
chunks in both, a deleted file leaves both, and a crash between the store's commit and the
index's save is repaired on reopen."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pytest

from lmstack.rag.knowledge_base import KnowledgeBase, recursive_spans
from lmstack.retrieve.index import ExactIndex, VectorIndex


class WordHashEmbedder:
    """Bag of hashed words, unit length: texts that share words are near. Counts what it
    embeds, so a test can see that nothing was embedded twice."""

    dim = 64

    def __init__(self):
        self.embedded: list[str] = []

    def encode(self, texts):
        self.embedded += list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def small_chunks(text):
    return recursive_spans(text, size=40, overlap=0)


def in_step(kb):
    """The invariant, read from the files on disk rather than through the objects."""
    with sqlite3.connect(kb.folder / "store.sqlite") as raw:
        stored = {r[0] for r in raw.execute("SELECT id FROM chunks")}
    return stored == set(VectorIndex.load(kb.index_path).ids()) == set(kb.index.ids())


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    (root / "cats.md").write_text("Cats purr softly.\n\nCats sleep all day long.")
    (root / "rust.txt").write_text("Rust has a borrow checker.\n\nCargo builds rust crates.")
    return root


def open_kb(tmp_path, embedder):
    return KnowledgeBase(tmp_path / "kb", embedder, chunker=small_chunks)


def test_folder_ingest_is_idempotent(tmp_path, docs):
    embedder = WordHashEmbedder()
    with open_kb(tmp_path, embedder) as kb:
        assert kb.ingest_folder(docs) == {"cats.md": "added", "rust.txt": "added"}
        n = len(kb.index)
        assert n == 4 and len(embedder.embedded) == 4 and in_step(kb)
        chunk, score = kb.search("borrow checker", 1)[0]
        assert 0 < score <= 1.0 + 1e-6
        assert chunk.source == "rust.txt" and chunk.text == "Rust has a borrow checker."
        assert kb.search("cats", 4, {"source": "cats.md"})[0][0].source == "cats.md"
        saved = kb.index_path.stat().st_mtime_ns
        assert kb.ingest_folder(docs) == {"cats.md": "unchanged", "rust.txt": "unchanged"}
        assert len(kb.index) == n and kb.index_path.stat().st_mtime_ns == saved
        embedded = len(embedder.embedded)
    with open_kb(tmp_path, embedder) as kb:  # reopen: nothing to reconcile, nothing embedded
        assert len(kb.index) == n and len(embedder.embedded) == embedded and in_step(kb)


def test_edit_and_delete_follow_the_files(tmp_path, docs):
    embedder = WordHashEmbedder()
    with open_kb(tmp_path, embedder) as kb:
        kb.ingest_folder(docs)
        old_cats = {c.id for c in kb.store.chunks("cats.md")}
        (docs / "cats.md").write_text("Dogs bark loudly at night.")
        (docs / "rust.txt").unlink()
        assert kb.ingest_folder(docs) == {"cats.md": "replaced", "rust.txt": "removed"}
        assert in_step(kb) and len(kb.index) == 1
        assert not old_cats & set(kb.index.ids())
        assert [c.source for c, _ in kb.search("borrow checker", 5)] == ["cats.md"]
        assert kb.search("dogs bark", 1)[0][0].text == "Dogs bark loudly at night."
        assert kb.remove("cats.md").status == "removed"
        assert len(kb.index) == 0 and in_step(kb)


def test_a_crash_between_store_and_index_is_repaired_on_reopen(tmp_path, docs, monkeypatch):
    embedder = WordHashEmbedder()
    with open_kb(tmp_path, embedder) as kb:
        kb.ingest_folder(docs)
    (docs / "cats.md").write_text("Dogs bark loudly at night.")

    def crash(*args, **kwargs):
        raise OSError("killed before the index was saved")

    with open_kb(tmp_path, embedder) as kb:
        monkeypatch.setattr(VectorIndex, "save", crash)
        with pytest.raises(OSError, match="killed"):
            kb.ingest_folder(docs)
        monkeypatch.undo()
    # On disk now: the store has the new chunk, the index file still the old four.
    with sqlite3.connect(tmp_path / "kb" / "store.sqlite") as raw:
        stored = {r[0] for r in raw.execute("SELECT id FROM chunks")}
    on_disk = set(VectorIndex.load(tmp_path / "kb" / "index.npz").ids())
    assert stored != on_disk and len(on_disk) == 4

    embedded_before = len(embedder.embedded)
    with open_kb(tmp_path, embedder) as kb:
        assert in_step(kb) and len(kb.index) == 3
        # Only the chunk the crash left out was embedded again on reopen.
        assert embedder.embedded[embedded_before:] == ["Dogs bark loudly at night."]
        assert kb.search("dogs bark", 1)[0][0].text == "Dogs bark loudly at night."


def test_an_index_without_reconciliation_would_drift(tmp_path, docs):
    # The deliberate break: skip sync on open, and the stale index answers with a chunk id
    # the store no longer has (what the test above guards against).
    embedder = WordHashEmbedder()
    with open_kb(tmp_path, embedder) as kb:
        kb.ingest_folder(docs)
        stale_index = VectorIndex.load(kb.index_path)
        (docs / "cats.md").write_text("Dogs bark loudly at night.")
        kb.ingest_folder(docs)
        hit = stale_index.search(embedder.encode(["cats purr softly."])[0], 1)[0]
        assert kb.store.chunk(hit.id) is None


def test_other_backends_and_a_wrong_embedder(tmp_path, docs):
    embedder = WordHashEmbedder()
    with KnowledgeBase(tmp_path / "kb", embedder, small_chunks, new_index=ExactIndex) as kb:
        kb.ingest_folder(docs)
        assert type(kb.index) is ExactIndex and in_step(kb)

    class Wider(WordHashEmbedder):
        dim = 128

    with pytest.raises(ValueError, match="64-d vectors but the embedder makes 128-d"):
        KnowledgeBase(tmp_path / "kb", Wider(), small_chunks)


def test_mmr_search_skips_copies(tmp_path):
    embedder = WordHashEmbedder()
    with open_kb(tmp_path, embedder) as kb:
        for i in range(3):
            kb.ingest(f"copy{i}.txt", "Cats purr softly on the warm mat.")
        kb.ingest("other.txt", "Cats chase mice in the barn.")
        plain = [c.source for c, _ in kb.search("cats purr on the mat", 2)]
        diverse = [c.source for c, _ in kb.search("cats purr on the mat", 2, mmr_lambda=0.5)]
        assert all(s.startswith("copy") for s in plain)
        assert diverse[0].startswith("copy") and diverse[1] == "other.txt"
