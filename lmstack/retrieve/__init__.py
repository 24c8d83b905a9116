"""Retrieval: lexical (BM25), dense vector indexes (exact, faiss, a reference HNSW), fusion, and
the SQLite document store the indexes' ids point into."""
