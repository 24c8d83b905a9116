"""The roadmap's showcase projects, thin layers over the library: kb (a knowledge-base
assistant on RAG)."""
