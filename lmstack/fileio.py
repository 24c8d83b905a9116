"""Atomic file writes: a temp file in the same folder, then one rename, so no reader (or a run
resumed after a crash) ever sees half a file. Follows the write-then-`os.replace` idiom."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[str], object]) -> None:
    """Call `write(tmp_path)` on a temp file beside `path`, then rename it onto `path`."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; saved models are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` as UTF-8, atomically."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def check_text_file(path: str | Path, chunk_bytes: int = 1 << 20) -> None:
    """Raise ValueError, naming `path`, unless it is a non-empty UTF-8 text file.

    Read in chunks through an incremental decoder, so a large corpus is checked without
    holding it in memory, and the error can say where the first bad byte is.
    """
    import codecs

    path = Path(path)
    decoder, offset, seen_text = codecs.getincrementaldecoder("utf-8")(), 0, False
    with path.open("rb") as f:
        while chunk := f.read(chunk_bytes):
            try:
                seen_text |= bool(decoder.decode(chunk).strip())
            except UnicodeDecodeError as e:
                raise ValueError(f"{path} is not UTF-8 text (bad byte at offset "
                                 f"{offset + e.start}); convert it, e.g. iconv -t UTF-8") from None
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text (it ends inside a character); "
                         "convert it, e.g. iconv -t UTF-8") from None
    if not seen_text:
        raise ValueError(f"{path} is empty (no text); give a file with text in it")
