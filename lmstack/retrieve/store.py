"""A document store on SQLite: documents (source, content hash, metadata, text) and their
chunks (character spans into the text), so a vector or BM25 hit maps back to a document.

Ingest is keyed by `source` (a path or any stable name) and compares a SHA-256 of the text:
the same text again writes nothing, a changed text replaces that document's chunks, and
`remove` / `prune` drop a deleted file's document and chunks. Every change runs inside one
transaction (`BEGIN IMMEDIATE` ... `COMMIT`), so a failure half-way leaves the old rows.

Chunk ids come from AUTOINCREMENT and are never reused, so an id held by a vector index can
never come to mean a different chunk. Each change reports the chunk ids it added and removed,
for the caller to apply to its index.

A vector index is kept in step by `lmstack.rag.knowledge_base`: the store is the truth, and
the index is reconciled against `chunk_ids()` on open and after every change, so a crash
between the store's commit and the index's save is repaired the next time.

Reference: SQLite's documentation on transactions, https://sqlite.org/lang_transaction.html
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    source   TEXT NOT NULL UNIQUE,
    sha256   TEXT NOT NULL,
    metadata TEXT NOT NULL,
    text     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id   INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal  INTEGER NOT NULL,
    start    INTEGER NOT NULL,
    end      INTEGER NOT NULL,
    text     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id, ordinal);
"""

CHUNKS = ("SELECT c.id, d.source, c.ordinal, c.start, c.end, c.text "
          "FROM chunks c JOIN documents d ON d.id = c.doc_id")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredChunk:
    id: int
    source: str
    ordinal: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Change:
    """What one call did: 'added', 'replaced', 'unchanged' or 'removed', and the chunk ids
    a vector index must add and delete to match."""

    status: str
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


class DocumentStore:
    """Documents and chunks in one SQLite file. `with DocumentStore(path) as store:` closes it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        # isolation_level=None: no implicit transactions; `_transaction` says where each begins.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA foreign_keys = ON")
        with self._transaction():
            # One statement at a time: executescript would COMMIT our transaction first.
            for statement in filter(str.strip, SCHEMA.split(";")):
                self._db.execute(statement)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so the read that decides what to write and
        # the write itself see the same database even with a second process on the file.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ingest(self, source: str, text: str, spans: Iterable[tuple[int, int]],
               metadata: dict | None = None) -> Change:
        """Store `text` under `source`, cut into chunks at `spans` (start, end) character
        offsets. The same text again is a no-op (its metadata too); a different text replaces
        the old chunks."""
        digest = content_hash(text)
        meta = json.dumps(metadata or {}, sort_keys=True, ensure_ascii=False)
        with self._transaction() as db:
            row = db.execute("SELECT id, sha256 FROM documents WHERE source = ?",
                             (source,)).fetchone()
            if row is not None and row[1] == digest:
                return Change("unchanged")
            removed = []
            if row is None:
                doc_id = db.execute(
                    "INSERT INTO documents (source, sha256, metadata, text) VALUES (?, ?, ?, ?)",
                    (source, digest, meta, text)).lastrowid
            else:
                doc_id = row[0]
                removed = self._chunk_ids(doc_id)
                db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                db.execute("UPDATE documents SET sha256 = ?, metadata = ?, text = ? WHERE id = ?",
                           (digest, meta, text, doc_id))
            added = []
            for ordinal, (start, end) in enumerate(spans):
                # Checked row by row inside the transaction: a bad span rolls back the lot.
                if not 0 <= start < end <= len(text):
                    raise ValueError(f"{source}: chunk {ordinal} span ({start}, {end}) is "
                                     f"outside the text of {len(text)} characters")
                added.append(db.execute(
                    "INSERT INTO chunks (doc_id, ordinal, start, end, text) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (doc_id, ordinal, start, end, text[start:end])).lastrowid)
        return Change("added" if row is None else "replaced", added, removed)

    def remove(self, source: str) -> Change:
        """Drop `source` and its chunks (a file deleted from the folder)."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
            if row is None:
                return Change("unchanged")
            removed = self._chunk_ids(row[0])
            db.execute("DELETE FROM documents WHERE id = ?", (row[0],))  # chunks cascade
        return Change("removed", removed=removed)

    def prune(self, keep: Iterable[str]) -> Change:
        """Drop every document whose source is not in `keep` (the files still on disk), in one
        transaction."""
        keep = set(keep)
        with self._transaction() as db:
            gone = [(i, s) for i, s in db.execute("SELECT id, source FROM documents")
                    if s not in keep]
            removed = []
            for doc_id, _ in gone:
                removed += self._chunk_ids(doc_id)
                db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return Change("removed" if gone else "unchanged", removed=removed)

    def _chunk_ids(self, doc_id: int) -> list[int]:
        return [r[0] for r in self._db.execute(
            "SELECT id FROM chunks WHERE doc_id = ? ORDER BY ordinal", (doc_id,))]

    # Reading.

    def sources(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT source FROM documents ORDER BY source")]

    def document(self, source: str) -> tuple[str, dict] | None:
        """(text, metadata) of `source`, or None."""
        row = self._db.execute("SELECT text, metadata FROM documents WHERE source = ?",
                               (source,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def chunks(self, source: str | None = None) -> list[StoredChunk]:
        """Chunks of `source` in order, or of every document (by source, then order)."""
        if source is None:
            rows = self._db.execute(CHUNKS + " ORDER BY d.source, c.ordinal")
        else:
            rows = self._db.execute(CHUNKS + " WHERE d.source = ? ORDER BY c.ordinal", (source,))
        return [StoredChunk(*r) for r in rows]

    def chunk_ids(self) -> set[int]:
        """Every chunk id: what a vector index in step with this store must hold."""
        return {r[0] for r in self._db.execute("SELECT id FROM chunks")}

    def chunk(self, chunk_id: int) -> StoredChunk | None:
        row = self._db.execute(CHUNKS + " WHERE c.id = ?", (chunk_id,)).fetchone()
        return None if row is None else StoredChunk(*row)
