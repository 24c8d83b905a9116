"""Input files a user can get wrong: empty, not UTF-8, JSONL with empty texts. Each is refused
with one line naming the file; and the shard folder is readable by others like any output."""

from __future__ import annotations

import json
import os
import stat

import pytest
from data_helpers import english_text

from lmstack.data import prepare_shards


@pytest.mark.parametrize(("name", "content", "words"), [
    ("empty.txt", b"", "is empty"),
    ("blank.txt", b"\n \n\t\n", "is empty"),
    ("latin1.txt", "café crème\n".encode("latin-1") * 10, "is not UTF-8 text (bad byte at offset 3)"),
    ("empty.jsonl", b'{"text": ""}\n{"text": " "}\n', "every record's 'text' is empty"),
])
def test_bad_input_is_refused_naming_the_file(tokenizer, tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        prepare_shards([path], tokenizer, tmp_path / "out", show_progress=False)
    assert str(path) in str(err.value) and words in str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_shard_folder_follows_the_umask_not_owner_only(tokenizer, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text(english_text(5_000), encoding="utf-8")
    old = os.umask(0o022)
    try:
        out = prepare_shards([path], tokenizer, tmp_path / "shards", show_progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert json.loads((out / "meta.json").read_text())["splits"]["train"]["tokens"] > 0
