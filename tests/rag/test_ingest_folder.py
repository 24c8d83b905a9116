"""The three pieces together on real files: load a folder, chunk it, store it; run it again
after editing one file and deleting another, and check what the store holds on disk."""

from __future__ import annotations

from lmstack.rag.chunking import recursive_chunks
from lmstack.rag.loaders import load_folder
from lmstack.retrieve.store import DocumentStore


def sync(root, db):
    docs = load_folder(root)
    with DocumentStore(db) as store:
        changes = {d.source: store.ingest(d.source, d.text,
                                          [(c.start, c.end) for c in recursive_chunks(d.text, 40)])
                   for d in docs}
        changes["<pruned>"] = store.prune(d.source for d in docs)
    return {k: v.status for k, v in changes.items()}


def test_folder_sync_is_idempotent_and_follows_the_files(tmp_path):
    root, db = tmp_path / "docs", tmp_path / "kb.sqlite"
    root.mkdir()
    (root / "a.md").write_text("# A\n\nFirst paragraph here.\n\nSecond one, a bit longer.",
                               encoding="utf-8")
    (root / "b.txt").write_text("天气很好。我们去公园散步吧！公园里有很多花。", encoding="utf-8")
    assert sync(root, db) == {"a.md": "added", "b.txt": "added", "<pruned>": "unchanged"}
    assert sync(root, db) == {"a.md": "unchanged", "b.txt": "unchanged",
                              "<pruned>": "unchanged"}

    (root / "a.md").write_text("# A\n\nRewritten.", encoding="utf-8")
    (root / "b.txt").unlink()
    assert sync(root, db) == {"a.md": "replaced", "<pruned>": "removed"}
    with DocumentStore(db) as store:
        assert store.sources() == ["a.md"]
        text, _ = store.document("a.md")
        chunks = store.chunks()
        assert [c.text for c in chunks] == ["# A\n\nRewritten."]
        assert all(text[c.start:c.end] == c.text for c in chunks)
