"""RAG: loading and chunking documents (fixed, recursive, semantic) and the knowledge base that
keeps their store and vector index in step (retrieve, augment, generate builds on these)."""
