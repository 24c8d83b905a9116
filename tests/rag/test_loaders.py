"""Loaders on real files in tmp_path: text of each kind, folders in a fixed order, and every
way out of the root (`..`, an absolute path, a symlink) refused."""

from __future__ import annotations

import os

import pytest

from lmstack.rag.loaders import OutsideRoot, html_to_text, load_file, load_folder

PAGE = """<html><head><title>T</title><style>p {color: red}</style></head>
<body><h1>Install</h1><p>Run <b>pip</b> &amp; wait.</p>
<script>alert("no")</script><ul><li>one</li><li>two</li></ul></body></html>"""


def tiny_pdf(lines: list[str]) -> bytes:
    """A real one-page-per-line PDF, written out by hand (objects, xref table with the true
    byte offsets, trailer) so the test needs no PDF writer."""
    n = len(lines)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects = ["<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {n} >>"]
    font = 3 + 2 * n
    for i, line in enumerate(lines):
        stream = f"BT /F1 12 Tf 72 720 Td ({line}) Tj ET"
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * i} 0 R >>")
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


@pytest.fixture
def root(tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "b.md").write_text("# B\n\nbee", encoding="utf-8")
    (docs / "a.txt").write_text("ay 中文", encoding="utf-8")
    (docs / "sub" / "c.html").write_text(PAGE, encoding="utf-8")
    (docs / "d.pdf").write_bytes(tiny_pdf(["Page one text.", "Page two text."]))
    (docs / "skip.bin").write_bytes(b"\x00\x01")
    (tmp_path / "secret.txt").write_text("do not read", encoding="utf-8")
    return docs


def test_html_to_text_drops_tags_scripts_and_styles():
    assert html_to_text(PAGE) == "Install\n\nRun pip & wait.\n\none\n\ntwo"


def test_load_each_kind(root):
    assert load_file(root, "a.txt").text == "ay 中文"
    assert load_file(root, "b.md").text == "# B\n\nbee"
    doc = load_file(root, "sub/c.html")
    assert doc.source == "sub/c.html" and "alert" not in doc.text and "pip & wait" in doc.text


def test_load_pdf_pages(root):
    assert load_file(root, "d.pdf").text == "Page one text.\n\nPage two text."


def test_folder_is_sorted_and_repeatable(root):
    docs = load_folder(root)
    assert [d.source for d in docs] == ["a.txt", "b.md", "d.pdf", "sub/c.html"]
    assert load_folder(root) == docs
    assert [d.source for d in load_folder(root, "sub")] == ["sub/c.html"]


def test_unsupported_suffix_refused(root):
    with pytest.raises(ValueError, match="cannot load .bin"):
        load_file(root, "skip.bin")


@pytest.mark.parametrize("path", ["../secret.txt", "sub/../../secret.txt", "/etc/hostname"])
def test_paths_outside_root_refused(root, path):
    with pytest.raises(OutsideRoot, match="outside the root"):
        load_file(root, path)


@pytest.mark.parametrize("folder", ["..", "sub/../..", "/etc"])
def test_folders_outside_root_refused(root, folder):
    with pytest.raises(OutsideRoot, match="outside the root"):
        load_folder(root, folder)


def test_absolute_path_inside_root_allowed(root):
    assert load_file(root, root / "a.txt").source == "a.txt"


def test_symlink_out_of_root_refused(root):
    os.symlink(root.parent / "secret.txt", root / "link.txt")
    with pytest.raises(OutsideRoot):
        load_file(root, "link.txt")
    with pytest.raises(OutsideRoot):  # found while walking the folder: refused, not skipped
        load_folder(root)
