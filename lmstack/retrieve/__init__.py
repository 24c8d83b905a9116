"""Retrieval: lexical (BM25), dense vector indexes (exact, faiss, a reference HNSW), fusion."""
