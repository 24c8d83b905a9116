"""RAG: chunking and loading documents (retrieve, augment, generate builds on these)."""
