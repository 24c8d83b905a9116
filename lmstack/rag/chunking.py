"""Split a document into chunks that remember where they came from.

Two chunkers, both returning `Chunk(text, start, end)` with `source[start:end] == text`, so a
citation can point back at the exact characters:

- `fixed_chunks`: windows of at most `size` units with `overlap` units shared between
  neighbours. A unit is a character by default, or a token when `length` counts tokens
  (e.g. `lambda s: len(tokenizer.encode(s))`).
- `recursive_chunks`: the idea of LangChain's RecursiveCharacterTextSplitter. Cut at the
  coarsest separator first (markdown headings, blank lines, line breaks, sentence ends with
  Chinese 。！？； included, spaces), cut again with the next one only the pieces still too
  long, fall back to fixed windows, then pack neighbouring pieces back together up to `size`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

Length = Callable[[str], int]

# Coarsest first. Each pattern marks where a cut goes: the cut is at the match's end, so a
# separator stays with the piece before it, and a heading (a lookahead) starts the next piece.
SEPARATORS: tuple[str, ...] = (
    r"\n(?=#{1,6}\s)",       # before a markdown heading
    r"\n[ \t]*\n\s*",        # blank lines: paragraphs
    r"\n",                   # lines
    r"[.!?](?=\s)\s*|[。！？；]",  # sentence ends; Chinese ones need no space after them
    r" +",                   # words
)


@dataclass(frozen=True)
class Chunk:
    """`text` is `source[start:end]` of the document it was cut from."""

    text: str
    start: int
    end: int


def _check(size: int, overlap: int) -> None:
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got {size=} {overlap=}")


def _window_end(text: str, start: int, stop: int, size: int, length: Length) -> int:
    """The largest end in (start, stop] with length(text[start:end]) <= size; at least start+1,
    so one over-long character still makes progress. Binary search: token counts grow with the
    text (near enough for BPE), so this asks the tokenizer O(log n) times, not n."""
    lo, hi = start + 1, stop
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if length(text[start:mid]) <= size:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _overlap_start(text: str, start: int, end: int, overlap: int, length: Length) -> int:
    """The smallest next start in (start, end] whose tail text[s:end] fits in `overlap`."""
    lo, hi = start + 1, end
    while lo < hi:
        mid = (lo + hi) // 2
        if length(text[mid:end]) <= overlap:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _windows(text: str, start: int, stop: int, size: int, overlap: int,
             length: Length) -> list[tuple[int, int]]:
    spans = []
    while start < stop:
        end = _window_end(text, start, stop, size, length)
        spans.append((start, end))
        if end == stop:
            break
        start = _overlap_start(text, start, end, overlap, length) if overlap else end
    return spans


def trimmed_chunks(text: str, spans: list[tuple[int, int]]) -> list[Chunk]:
    """Trim whitespace at each span's edges (moving the span with it); drop empty ones."""
    out = []
    for start, end in spans:
        piece = text[start:end]
        stripped = piece.lstrip()
        start += len(piece) - len(stripped)
        end = start + len(stripped.rstrip())
        if end > start:
            out.append(Chunk(text[start:end], start, end))
    return out


def fixed_chunks(text: str, size: int, overlap: int = 0, length: Length = len) -> list[Chunk]:
    """Windows of at most `size` units, neighbours sharing up to `overlap` units."""
    _check(size, overlap)
    return trimmed_chunks(text, _windows(text, 0, len(text), size, overlap, length))


def _pieces(text: str, start: int, stop: int, level: int, size: int,
            length: Length) -> list[tuple[int, int]]:
    """Spans tiling [start, stop), each within `size`, cut as coarsely as possible."""
    if length(text[start:stop]) <= size:
        return [(start, stop)]
    if level == len(SEPARATORS):  # no separator left: plain windows of characters
        return _windows(text, start, stop, size, 0, length)
    cuts = [m.end() for m in re.compile(SEPARATORS[level]).finditer(text, start, stop)
            if start < m.end() < stop]
    bounds = [start, *sorted(set(cuts)), stop]
    out = []
    for a, b in pairwise(bounds):
        out += _pieces(text, a, b, level + 1, size, length)
    return out


def _pack(text: str, pieces: list[tuple[int, int]], size: int, overlap: int,
          length: Length) -> list[tuple[int, int]]:
    """Join neighbouring pieces into spans of at most `size`; a new span starts with the
    previous span's last pieces while they fit in `overlap`."""
    spans: list[tuple[int, int]] = []
    group: list[tuple[int, int]] = []
    for piece in pieces:
        if group and length(text[group[0][0]:piece[1]]) > size:
            spans.append((group[0][0], group[-1][1]))
            # Carry the tail over while it stays within `overlap` and leaves room for `piece`.
            tail: list[tuple[int, int]] = []
            for prev in reversed(group):
                if (length(text[prev[0]:group[-1][1]]) > overlap
                        or length(text[prev[0]:piece[1]]) > size):
                    break
                tail.insert(0, prev)
            group = tail
        group.append(piece)
    if group:
        spans.append((group[0][0], group[-1][1]))
    return spans


def recursive_chunks(text: str, size: int, overlap: int = 0,
                     length: Length = len) -> list[Chunk]:
    """Cut at the coarsest separators that bring every piece within `size`, then pack
    neighbouring pieces back into chunks of at most `size`. Markdown headings are hard
    walls: a chunk never holds the end of one section and the start of the next."""
    _check(size, overlap)
    cuts = [m.end() for m in re.finditer(SEPARATORS[0], text) if 0 < m.end() < len(text)]
    bounds = [0, *cuts, len(text)]
    spans = []
    for a, b in pairwise(bounds):
        spans += _pack(text, _pieces(text, a, b, 1, size, length), size, overlap, length)
    return trimmed_chunks(text, spans)
