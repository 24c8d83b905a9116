"""The roadmap's showcase projects: small end-to-end applications built on the stack below
(models, tokenizers, training, serving, agents), each with its own `lmstack apps NAME`
commands."""
