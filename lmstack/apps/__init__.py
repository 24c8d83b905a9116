"""The roadmap's showcase projects: small end-to-end applications built on the stack below
(models, tokenizers, training, serving, RAG, agents), each with its own `lmstack apps NAME`
commands: kb (a knowledge-base assistant), sentiment, support (customer service)."""
