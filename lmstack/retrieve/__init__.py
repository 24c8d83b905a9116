"""Retrieval: lexical (BM25), dense vector indexes (exact, faiss, Qdrant, a reference HNSW),
fusion, MMR diversification, re-ranking, and the SQLite document store the indexes' ids point
into."""
