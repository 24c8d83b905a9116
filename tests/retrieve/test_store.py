"""The SQLite document store on a real file: idempotent ingest, replacement of a changed
document's chunks, removal of a deleted one's, rollback on failure, and all of it surviving a
reopen of the database."""

from __future__ import annotations

import sqlite3

import pytest

from lmstack.retrieve.store import DocumentStore

TEXT = "Alpha beta. Gamma delta. Epsilon."
SPANS = [(0, 11), (12, 24), (25, 33)]


def test_ingest_then_reopen(tmp_path):
    db = tmp_path / "kb.sqlite"
    with DocumentStore(db) as store:
        change = store.ingest("a.txt", TEXT, SPANS, {"lang": "en"})
        assert change.status == "added" and len(change.added) == 3 and change.removed == []
    with DocumentStore(db) as store:
        assert store.sources() == ["a.txt"]
        assert store.document("a.txt") == (TEXT, {"lang": "en"})
        chunks = store.chunks("a.txt")
        assert [c.text for c in chunks] == ["Alpha beta.", "Gamma delta.", "Epsilon."]
        assert all(TEXT[c.start:c.end] == c.text for c in chunks)
        assert store.chunk(chunks[1].id) == chunks[1]
        assert store.chunk(10_000) is None


def test_same_file_again_adds_nothing(tmp_path):
    db = tmp_path / "kb.sqlite"
    with DocumentStore(db) as store:
        first = store.ingest("a.txt", TEXT, SPANS)
    with DocumentStore(db) as store:
        again = store.ingest("a.txt", TEXT, SPANS)
        assert again.status == "unchanged" and again.added == [] and again.removed == []
        assert [c.id for c in store.chunks()] == first.added
    # Counted in the file itself, not through the store's own reads.
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT COUNT(*) FROM chunks").fetchone() == (3,)
        assert raw.execute("SELECT COUNT(*) FROM documents").fetchone() == (1,)


def test_changed_file_replaces_its_chunks_only(tmp_path):
    db = tmp_path / "kb.sqlite"
    with DocumentStore(db) as store:
        old = store.ingest("a.txt", TEXT, SPANS)
        other = store.ingest("b.txt", "Other file.", [(0, 11)])
        new_text = "Alpha beta. Zeta."
        change = store.ingest("a.txt", new_text, [(0, 11), (12, 17)])
        assert change.status == "replaced" and change.removed == old.added
        # Fresh ids, never a reused one: an index holding an old id cannot misread it.
        assert not set(change.added) & set(old.added)
    with DocumentStore(db) as store:
        assert [c.text for c in store.chunks("a.txt")] == ["Alpha beta.", "Zeta."]
        assert [c.id for c in store.chunks("b.txt")] == other.added
        assert store.document("a.txt")[0] == new_text


def test_deleted_files_chunks_go(tmp_path):
    db = tmp_path / "kb.sqlite"
    with DocumentStore(db) as store:
        a = store.ingest("a.txt", TEXT, SPANS)
        b = store.ingest("b.txt", "Other file.", [(0, 11)])
        c = store.ingest("c.txt", "Third.", [(0, 6)])
        assert store.remove("a.txt").removed == a.added
        assert store.remove("a.txt").status == "unchanged"
        pruned = store.prune(["c.txt"])  # b.txt is no longer on disk
        assert pruned.status == "removed" and pruned.removed == b.added
    with DocumentStore(db) as store:
        assert store.sources() == ["c.txt"]
        assert [ch.id for ch in store.chunks()] == c.added
    with sqlite3.connect(db) as raw:  # no orphan chunk rows left behind
        assert raw.execute("SELECT COUNT(*) FROM chunks").fetchone() == (1,)


def test_failed_ingest_rolls_back(tmp_path):
    db = tmp_path / "kb.sqlite"
    with DocumentStore(db) as store:
        old = store.ingest("a.txt", TEXT, SPANS)
        # The second span runs past the text: found only after the old chunks were deleted
        # and the first new one inserted, so only a rollback can keep the old ones.
        with pytest.raises(ValueError, match="outside the text"):
            store.ingest("a.txt", "Changed text.", [(0, 8), (9, 99)])
        with pytest.raises(ValueError):
            store.ingest("new.txt", "New.", [(0, 99)])
    with DocumentStore(db) as store:
        assert store.sources() == ["a.txt"]
        assert store.document("a.txt")[0] == TEXT
        assert [c.id for c in store.chunks()] == old.added
