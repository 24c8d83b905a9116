"""`python -m lmstack ...` (what torchrun launches) is the same CLI as `lmstack ...`."""

from lmstack.cli import main

main()
