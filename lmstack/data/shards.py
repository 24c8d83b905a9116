"""Text and JSONL files -> tokenized numpy shards on disk, split into train/val, read back packed.

Follows the layout of nanoGPT / litgpt pretraining data (flat token streams in memmapped .bin
files, documents joined by EOS, fixed-length windows cut from the stream).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmstack.fileio import check_text_file

META_FILE = "meta.json"
SPLITS = ("train", "val")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 halves disk and page-cache use whenever every id fits in 16 bits."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def read_documents(path: Path, text_key: str = "text") -> list[str]:
    """Documents of one file: JSONL records' `text_key`, or blank-line-separated text blocks.

    Plain text is cut at blank lines so the train/val split falls between paragraphs rather
    than inside a sentence; the blocks are joined back with their blank line when tokenized.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    check_text_file(path)  # one line naming the file, not a decode error that names none
    if path.suffix in (".jsonl", ".json"):
        docs = []
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: not a JSON line ({e.msg})") from None
                if not isinstance(record, dict) or text_key not in record:
                    raise ValueError(f"{path}:{lineno}: record has no {text_key!r} field; "
                                     "pass --text-key with the field that holds the text")
                docs.append(str(record[text_key]))
        if not any(d.strip() for d in docs):
            raise ValueError(f"{path}: every record's {text_key!r} is empty; give text")
        return docs
    text = path.read_text(encoding="utf-8")
    blocks = [b + "\n\n" for b in text.split("\n\n") if b.strip()]
    if len(blocks) < 20:  # few or no blank lines: lines are the finest cut that still splits
        blocks = [line for line in text.splitlines(keepends=True) if line.strip()]
    return blocks


def split_documents(docs: Sequence[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """The last `val_fraction` of a file's documents are held out (at least one if asked for).

    A contiguous tail, not a random sample: neighbouring paragraphs share phrasing, so a random
    split would leak the validation text into training and flatter the validation loss.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = round(len(docs) * val_fraction)
    if val_fraction > 0 and n_val == 0 and len(docs) > 1:
        n_val = 1
    cut = len(docs) - n_val
    return list(docs[:cut]), list(docs[cut:])


class _ShardWriter:
    """Appends token arrays to numbered .bin files, starting a new one every `shard_tokens`."""

    def __init__(self, folder: Path, split: str, dtype: np.dtype, shard_tokens: int):
        self.folder, self.split, self.dtype, self.shard_tokens = folder, split, dtype, shard_tokens
        self.shards: list[dict[str, Any]] = []
        self._file = None

    def _open_next(self) -> None:
        if self._file is not None:
            self._file.close()
        name = f"{self.split}_{len(self.shards):04d}.bin"
        self.shards.append({"file": name, "tokens": 0})
        self._file = open(self.folder / name, "wb")  # noqa: SIM115 - closed in close()

    def write(self, ids: np.ndarray) -> None:
        while len(ids):
            if self._file is None or self.shards[-1]["tokens"] >= self.shard_tokens:
                self._open_next()
            room = self.shard_tokens - self.shards[-1]["tokens"]
            part, ids = ids[:room], ids[room:]
            part.astype(self.dtype).tofile(self._file)
            self.shards[-1]["tokens"] += len(part)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def prepare_shards(
    files: Sequence[str | Path],
    tokenizer: Any,
    out: str | Path,
    val_fraction: float = 0.05,
    shard_tokens: int = 100_000_000,
    text_key: str = "text",
    append_eos: bool = True,
    batch_docs: int = 256,
    show_progress: bool = True,
) -> Path:
    """Tokenize `files` into `out`/{train,val}_NNNN.bin + meta.json; returns `out`.

    The folder appears all at once (written beside it, then renamed), so an interrupted run
    never leaves shards that look complete. Each document ends with EOS so that packed
    windows spanning two documents still mark where one stops.
    """
    out = Path(out)
    vocab = len(tokenizer)
    dtype = token_dtype(vocab)
    eos = tokenizer.eos_token_id if append_eos else None
    if append_eos and eos is None:
        raise ValueError("the tokenizer has no eos_token; set one or pass append_eos=False")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    # mkdtemp makes the folder owner-only (0700); shards are meant to be shared like any output.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    try:
        writers = {s: _ShardWriter(tmp, s, dtype, shard_tokens) for s in SPLITS}
        stats = {s: {"documents": 0, "characters": 0} for s in SPLITS}
        jobs = []
        for f in files:
            train_docs, val_docs = split_documents(read_documents(Path(f), text_key), val_fraction)
            jobs += [("train", train_docs), ("val", val_docs)]
        total_chars = sum(len(d) for _, docs in jobs for d in docs)
        with _progress(show_progress, total_chars) as advance:
            for split, docs in jobs:
                for i in range(0, len(docs), batch_docs):
                    chunk = docs[i:i + batch_docs]
                    for ids in tokenizer.encode_batch(chunk, add_special_tokens=False):
                        writers[split].write(np.asarray(ids + ([eos] if eos is not None else []),
                                                        dtype=np.int64))
                    stats[split]["documents"] += len(chunk)
                    stats[split]["characters"] += sum(len(d) for d in chunk)
                    advance(sum(len(d) for d in chunk))
        for w in writers.values():
            w.close()
        meta = {
            "format": "lmstack-token-shards-v1",
            "dtype": dtype.name,
            "vocab_size": vocab,
            "eos_token_id": eos,
            "sources": [str(f) for f in files],
            "val_fraction": val_fraction,
            "splits": {s: {**stats[s], "shards": writers[s].shards,
                           "tokens": sum(x["tokens"] for x in writers[s].shards)}
                       for s in SPLITS},
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


class _progress:
    """A rich progress bar over characters tokenized, or nothing when progress is off."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import Progress

        self._bar = Progress(*Progress.get_default_columns(), transient=False)
        self._bar.start()
        task = self._bar.add_task("tokenizing", total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._bar.stop()


@dataclass
class TokenShards:
    """One split of a prepared shard folder, memory-mapped: nothing is read until indexed."""

    folder: Path
    split: str
    meta: dict[str, Any]
    arrays: list[np.memmap]

    @classmethod
    def open(cls, folder: str | Path, split: str = "train") -> TokenShards:
        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{folder} holds no {META_FILE}; create it with `lmstack data prepare`")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if split not in meta["splits"]:
            raise ValueError(f"{folder} has no split {split!r} (has {', '.join(meta['splits'])})")
        dtype = np.dtype(meta["dtype"])
        if dtype not in (np.uint16, np.uint32):
            raise ValueError(f"{meta_path}: token dtype {dtype} is not uint16 or uint32; "
                             "re-create the shards with `lmstack data prepare`")
        root, arrays = folder.resolve(), []
        for s in meta["splits"][split]["shards"]:
            path = (folder / s["file"]).resolve()
            if root not in path.parents:  # meta.json is data: it may not name files elsewhere
                raise ValueError(f"{meta_path} points outside its folder ({s['file']}); refusing")
            if s["tokens"]:
                arrays.append(np.memmap(path, dtype=dtype, mode="r", shape=(s["tokens"],)))
        return cls(folder, split, meta, arrays)

    @property
    def num_tokens(self) -> int:
        return sum(len(a) for a in self.arrays)

    @property
    def num_characters(self) -> int:
        return self.meta["splits"][self.split]["characters"]

    def tokens(self) -> np.ndarray:
        """The whole split as one in-memory array (for evaluation of small held-out sets)."""
        return np.concatenate([np.asarray(a) for a in self.arrays]) if self.arrays else \
            np.zeros(0, dtype=np.int64)

    def iter_documents(self) -> Iterator[np.ndarray]:
        """Documents back as id arrays, cut at EOS (the separator prepare_shards appended)."""
        eos = self.meta["eos_token_id"]
        if eos is None:
            raise ValueError("these shards were written without EOS, so documents cannot be cut")
        data = self.tokens()
        start = 0
        for end in np.flatnonzero(data == eos):
            yield data[start:end]
            start = end + 1


class PackedSequences:
    """Fixed windows of `seq_len + 1` tokens cut end to end from a token stream.

    Each window holds inputs and next-token targets together (x = w[:-1], y = w[1:]).
    Consecutive windows overlap by one token so every token is a target exactly once; windows
    never cross a shard file, which keeps indexing to one memmap slice.
    """

    def __init__(self, source: TokenShards | np.ndarray, seq_len: int):
        arrays = source.arrays if isinstance(source, TokenShards) else [np.asarray(source)]
        self.seq_len = seq_len
        self.arrays = arrays
        counts = [max(0, (len(a) - 1) // seq_len) for a in arrays]
        self.offsets = np.cumsum([0, *counts])
        if self.offsets[-1] == 0:
            raise ValueError(
                f"not enough tokens for one sequence of {seq_len + 1}; use a shorter seq_len "
                "or more text")

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(index)
        shard = int(np.searchsorted(self.offsets, index, side="right") - 1)
        start = (index - int(self.offsets[shard])) * self.seq_len
        return np.asarray(self.arrays[shard][start:start + self.seq_len + 1], dtype=np.int64)

    def batch(self, indices: Sequence[int], keys: Sequence[int] | None = None) -> dict[str, Any]:
        """{"input_ids": [B, seq_len + 1]}; `keys` (draw numbers) matter only to random data."""
        import torch

        return {"input_ids": torch.from_numpy(np.stack([self[int(i)] for i in indices]))}
