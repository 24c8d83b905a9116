"""The standard-library corpus: the same bytes on every run, built without importing the
modules it reads (a fresh interpreter builds it, then we look at what it imported)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from lmstack.demo.corpus import docstrings

SCRIPT = """
import hashlib, json, sys
from lmstack.demo.corpus import stdlib_corpus
before = set(sys.modules)
text = stdlib_corpus(300_000)
print(json.dumps({"sha": hashlib.sha256(text.encode()).hexdigest(), "chars": len(text),
                  "imported": sorted(set(sys.modules) - before)}))
"""


def build_in_a_fresh_process() -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         check=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": "random"})
    return json.loads(out.stdout)


def test_same_bytes_every_run_and_no_library_imports():
    first, second = build_in_a_fresh_process(), build_in_a_fresh_process()
    assert first["sha"] == second["sha"] and first["chars"] == 300_000
    # It read hundreds of modules' sources; importing them would show up here.
    assert len(first["imported"]) < 5, first["imported"]


def test_docstrings_of_public_definitions_in_source_order():
    source = '''
"""Module docstring, long enough to be kept: it explains what the module is about, at length."""
class Public:
    """A class docstring, long enough to be kept, describing the public class in some detail."""
    def method(self):
        """A method docstring, long enough to be kept, describing what the method returns to its caller."""
    def _private(self):
        """A private docstring, long enough to be kept, but private names are skipped anyway."""
def short():
    """Too short."""
'''
    docs = docstrings(source)
    assert [d.split(",")[0] for d in docs] == ["Module docstring", "A class docstring",
                                                "A method docstring"]
    assert docstrings("def broken(:\n") == []
