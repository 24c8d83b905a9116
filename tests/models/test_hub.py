"""Model folders: sharded save and load (also by transformers), pickle safety, and one clear
ModelLoadError for every way a folder can be broken."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from lmstack.models import LlamaConfig, LlamaForCausalLM, ModelLoadError, load_model, save_model
from lmstack.models.hub import SAFE_INDEX

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = {"vocab_size": 96, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}


def tiny_llama(**overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**{**TINY, **overrides})).eval()
    with torch.no_grad():  # norms start at one: move them so every tensor is tested
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return model


def saved(folder: Path, **overrides) -> Path:
    save_model(tiny_llama(**overrides), folder)
    return folder


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------- round trips


def test_sharded_save_writes_an_index_and_loads_back_identical(tmp_path):
    model = tiny_llama()
    save_model(model, tmp_path, max_shard_bytes=20_000)
    index = json.loads((tmp_path / SAFE_INDEX).read_text())
    shards = sorted(tmp_path.glob("model-*-of-*.safetensors"))
    assert len(shards) > 2 and not (tmp_path / "model.safetensors").exists()
    assert set(index["weight_map"].values()) == {s.name for s in shards}
    assert set(index["weight_map"]) == set(model.state_dict())
    total = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    assert index["metadata"]["total_size"] == total
    assert not list(tmp_path.glob("*.tmp")), "temp files must be renamed or removed"

    back = load_model(tmp_path)
    assert_same_weights(model, back)
    ids = torch.randint(0, TINY["vocab_size"], (2, 9))
    with torch.no_grad():
        assert torch.equal(model(ids), back(ids))


def test_transformers_loads_our_sharded_folder(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = tiny_llama()
    save_model(model, tmp_path, max_shard_bytes=20_000)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    ids = torch.randint(0, TINY["vocab_size"], (2, 9))
    with torch.no_grad():
        diff = (hf(input_ids=ids).logits - model(ids)).abs().max().item()
    assert diff < 1e-4


def test_saving_over_an_old_sharded_save_leaves_only_the_new_weights(tmp_path):
    old, new = tiny_llama(), tiny_llama(rms_norm_eps=1e-5)
    with torch.no_grad():
        new.lm_head.weight.add_(1.0)  # differs from `old` in a tensor load_model reads
    save_model(old, tmp_path, max_shard_bytes=20_000)
    save_model(new, tmp_path)  # one file this time: the old index must not win
    assert not (tmp_path / SAFE_INDEX).exists()
    assert not list(tmp_path.glob("model-*-of-*.safetensors"))
    assert_same_weights(new, load_model(tmp_path))

    save_model(old, tmp_path, max_shard_bytes=30_000)  # and back: no single file left over
    assert not (tmp_path / "model.safetensors").exists()
    assert_same_weights(old, load_model(tmp_path))


def test_plain_pickle_state_dict_loads_through_weights_only(tmp_path):
    model = tiny_llama()
    save_model(model, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    assert_same_weights(model, load_model(tmp_path))


class Payload:
    """What a hostile checkpoint hides: unpickling it calls a function of the author's choice.
    Here the function only creates a marker file, so the test can see whether it ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    folder = saved(tmp_path / "model")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    state = dict(tiny_llama().state_dict())
    state["model.embed_tokens.weight"] = Payload(marker)
    torch.save(state, folder / "pytorch_model.bin")

    with pytest.raises(ModelLoadError, match=r"refusing .*pytorch_model\.bin.*weights_only"):
        load_model(folder)
    assert not marker.exists(), "the pickle's payload ran"

    # The payload is live: an unguarded loader would have run it.
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_load_in_bfloat16(tmp_path):
    model = tiny_llama()
    save_model(model, tmp_path)
    for dtype in (torch.bfloat16, "bfloat16"):
        back = load_model(tmp_path, dtype=dtype)
        assert {p.dtype for p in back.parameters()} == {torch.bfloat16}
        ids = torch.randint(0, TINY["vocab_size"], (2, 9))
        with torch.no_grad():
            got, want = back(ids).float(), model(ids)
        assert (got - want).abs().max().item() < 0.05 * want.abs().max().item()
    # A folder saved in bf16 says so in config.json and loads in bf16 by default.
    save_model(back, tmp_path / "bf16")
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert next(load_model(tmp_path / "bf16").parameters()).dtype == torch.bfloat16


def test_num_parameters_counts_tied_weights_once(tmp_path):
    tied = tiny_llama(tie_word_embeddings=True)
    untied = tiny_llama()
    embedding = TINY["vocab_size"] * TINY["hidden_size"]
    assert untied.num_parameters() - tied.num_parameters() == embedding
    assert tied.num_parameters() == sum(p.numel() for p in set(tied.parameters()))
    save_model(tied, tmp_path)
    back = load_model(tmp_path)
    assert back.lm_head.weight is back.model.embed_tokens.weight
    assert back.num_parameters() == tied.num_parameters()
    transformers = pytest.importorskip("transformers")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert hf.num_parameters() == tied.num_parameters()


# ---------------------------------------------------------------- broken folders


def rewrite_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def make_broken(kind: str, root: Path) -> Path:
    """A model folder broken in one way (the CLI tests reuse the same recipes)."""
    folder = root / kind
    if kind == "missing-folder":
        return folder
    if kind == "no-config":
        saved(folder)
        (folder / "config.json").unlink()
    elif kind == "invalid-json":
        saved(folder)
        (folder / "config.json").write_text('{"model_type": "llama",')
    elif kind == "config-not-object":
        saved(folder)
        (folder / "config.json").write_text("[]")
    elif kind == "unknown-architecture":
        saved(folder)
        rewrite_config(folder, architectures=["MambaForCausalLM"], model_type="mamba")
    elif kind == "no-weights":
        saved(folder)
        (folder / "model.safetensors").unlink()
    elif kind == "truncated-safetensors":
        saved(folder)
        path = folder / "model.safetensors"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "truncated-shard":
        save_model(tiny_llama(), folder, max_shard_bytes=20_000)
        path = folder / json.loads((folder / SAFE_INDEX).read_text())["weight_map"][
            "model.norm.weight"]
        path.write_bytes(path.read_bytes()[:100])
    elif kind == "config-more-layers":  # config says 3 layers, the weights hold 2
        saved(folder)
        rewrite_config(folder, num_hidden_layers=3)
    elif kind == "config-fewer-layers":  # config says 2 layers, the weights hold 3
        saved(folder, num_hidden_layers=3)
        rewrite_config(folder, num_hidden_layers=2)
    elif kind == "shape-mismatch":
        saved(folder)
        rewrite_config(folder, intermediate_size=48)
    elif kind == "index-outside-folder":
        save_model(tiny_llama(), folder, max_shard_bytes=20_000)
        index = json.loads((folder / SAFE_INDEX).read_text())
        first = next(iter(index["weight_map"]))
        (root / "stolen.safetensors").write_bytes(b"")  # present, so only escaping is wrong
        index["weight_map"][first] = "../stolen.safetensors"
        (folder / SAFE_INDEX).write_text(json.dumps(index))
    elif kind == "symlink-outside-folder":  # a folder's weights are a link to another file
        saved(folder)
        (folder / "model.safetensors").rename(root / "elsewhere.safetensors")
        (folder / "model.safetensors").symlink_to(root / "elsewhere.safetensors")
    elif kind == "index-invalid":
        save_model(tiny_llama(), folder, max_shard_bytes=20_000)
        (folder / SAFE_INDEX).write_text('{"metadata": {}}')
    elif kind == "malicious-pickle":
        saved(folder)
        (folder / "model.safetensors").unlink()
        torch.save({"model.norm.weight": Payload(root / "pwned")}, folder / "pytorch_model.bin")
    else:
        raise AssertionError(kind)
    return folder


BROKEN = {
    "missing-folder": r"is not a folder",
    "no-config": r"has no config\.json",
    "invalid-json": r"config\.json is not valid JSON",
    "config-not-object": r"config\.json holds a JSON list, not an object",
    "unknown-architecture": r"unknown architecture \['MambaForCausalLM'\]; lmstack supports",
    "no-weights": r"has no weights",
    "truncated-safetensors": r"model\.safetensors is not a readable safetensors file",
    "truncated-shard": r"model-\d+-of-\d+\.safetensors is not a readable safetensors file",
    "config-more-layers": r"disagree: missing \d+ weights \(e\.g\. model\.layers\.2\.",
    "config-fewer-layers": r"disagree: \d+ unexpected weights \(e\.g\. model\.layers\.2\.",
    "shape-mismatch": r"disagree: .*shape mismatch: model\.layers\.0\.mlp\.\w+_proj\.weight: "
                      r"checkpoint \(\d+, \d+\) vs config",
    "index-outside-folder": r"points outside its folder \(\.\./stolen\.safetensors\)",
    "symlink-outside-folder": r"model\.safetensors points outside its folder "
                              r"\(.*elsewhere\.safetensors\)",
    "index-invalid": r"model\.safetensors\.index\.json .*weight_map",
    "malicious-pickle": r"refusing .*pytorch_model\.bin",
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_folder_raises_a_clear_model_load_error(kind, tmp_path):
    folder = make_broken(kind, tmp_path)
    with pytest.raises(ModelLoadError, match=BROKEN[kind]) as err:
        load_model(folder)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "pwned").exists()
