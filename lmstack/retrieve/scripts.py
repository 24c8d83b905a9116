"""Which writing system a text is in: enough to tell whether an embedding model can read it.

A sentence embedder trained on English pairs (all-MiniLM-L6-v2) gives Chinese text vectors
that carry little meaning, and fusing its ranking with BM25's then drags good lexical results
down (CMRC 2018: nDCG@10 0.98 for BM25 alone, 0.71 fused). An embedder declares the scripts it
was trained on (`Embedder.scripts`); retrievers ask `writing_system(query)` before trusting it.
"""

from __future__ import annotations

import re

# CJK Unified Ideographs (with extension A) and the compatibility block: the characters that
# Chinese text writes without spaces, so words cannot be found by splitting.
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_CHAR = re.compile(rf"[{CJK}]")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")
_OTHER_WORD = re.compile(rf"[^\W\d_A-Za-z\u00c0-\u024f{CJK}]+")


def writing_system(text: str) -> str:
    """"cjk", "latin" or "other" (Cyrillic, Arabic, ... or no letters at all): the script of
    at least half of the text's units, a unit being a Han character or a word of another
    script. So a Chinese question naming `Python` or `GPU` is still "cjk": a Chinese word
    is one or two characters, an English one a whole run of letters."""
    cjk, latin = len(_CJK_CHAR.findall(text)), len(_LATIN_WORD.findall(text))
    units = cjk + latin + len(_OTHER_WORD.findall(text))
    if not units:
        return "other"
    if cjk * 2 >= units:
        return "cjk"
    return "latin" if latin * 2 >= units else "other"
