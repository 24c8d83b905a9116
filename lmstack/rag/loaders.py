"""Load documents as text from under one root folder: .txt, .md, .html (tags dropped with the
standard library's html.parser), .pdf (pypdf's text extraction, pages apart by a blank line),
and whole folders in sorted order, so two runs over the same
files give the same documents in the same order.

Every path is resolved (symlinks followed, `..` folded) before it is read, and refused with
`OutsideRoot` unless it still lies under the root: a document collection must not be a way to
read /etc/passwd. Reference: the OWASP note on path traversal,
https://owasp.org/www-community/attacks/Path_Traversal
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf")


class OutsideRoot(ValueError):
    """A path that resolves outside the root it was given under."""


@dataclass(frozen=True)
class Document:
    """`source` is the path relative to the root, with forward slashes (a stable store key)."""

    source: str
    text: str


def inside(root: str | Path, path: str | Path) -> Path:
    """`path` (relative to `root`, or absolute) resolved; OutsideRoot unless under `root`."""
    base = Path(root).resolve()
    full = (base / path).resolve()  # an absolute `path` replaces `base` here, then is checked
    if not full.is_relative_to(base):
        raise OutsideRoot(f"refused: {path} resolves to {full}, outside the root {base}")
    return full


class _TextOfHtml(HTMLParser):
    """Collect the text of a page; skip scripts and styles; a block element ends a line."""

    SKIP = frozenset({"script", "style", "head", "template", "noscript"})
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre",
                        "section", "article", "table", "ul", "ol", "blockquote", "hr", "title"})

    def __init__(self) -> None:
        super().__init__()  # convert_charrefs=True: &amp; and friends arrive decoded
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    # Runs of empty lines fold to one blank line: paragraphs stay apart for the chunker.
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


def pdf_to_text(path: Path) -> str:
    from pypdf import PdfReader  # imported here: only PDF users need it installed

    pages = (page.extract_text() or "" for page in PdfReader(path).pages)
    return "\n\n".join(p.strip() for p in pages if p.strip())


def load_file(root: str | Path, path: str | Path) -> Document:
    """One file under `root` as a Document."""
    full = inside(root, path)
    suffix = full.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: cannot load {suffix or 'a file without a suffix'}; "
                         f"supported: {', '.join(SUFFIXES)}")
    if suffix == ".pdf":
        text = pdf_to_text(full)
    else:
        text = full.read_text(encoding="utf-8")
        if suffix in (".html", ".htm"):
            text = html_to_text(text)
    return Document(full.relative_to(Path(root).resolve()).as_posix(), text)


def load_folder(root: str | Path, folder: str | Path = ".") -> list[Document]:
    """Every supported file under `root/folder`, recursively, sorted by path. A symlink
    pointing out of `root` is refused, not skipped: a quiet skip would hide it."""
    top = inside(root, folder)
    files = sorted(p for p in top.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    # Each file is checked again: rglob lists a symlink by its own name, not its target.
    return [load_file(root, p) for p in files]
