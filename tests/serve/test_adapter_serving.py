"""Per-request LoRA adapters in the live server: `model="tiny:a"` picks adapter a, requests
with different adapters decode in the same engine steps, and each gets exactly what its
adapter alone gives in-process; /v1/models lists the adapters; an unknown one is a 404."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import httpx
import pytest
import torch

from lmstack import load
from lmstack.adapt import apply_lora, load_adapter, lora_layers, save_adapter
from lmstack.cli.args import UserError, parse_adapter
from lmstack.models.generate import generate
from lmstack.serve import BackgroundServer, create_app, load_entry

sys.path.insert(0, str(Path(__file__).parents[1]))
from cli_helpers import run_lmstack

PROMPT = [5, 9, 14, 3, 22, 7]
NEW = 12


@pytest.fixture(scope="module")
def adapter_folders(lm_folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("served-adapters")
    for seed, name in enumerate(["a", "b"]):
        torch.manual_seed(seed)
        model = apply_lora(load(lm_folder)[0], ("q_proj", "v_proj", "down_proj"), r=4, alpha=8)
        with torch.no_grad():
            for layer in lora_layers(model).values():
                layer.lora_B.weight.normal_(0, 1.0)
        save_adapter(model, root / name)
    return root


@pytest.fixture(scope="module")
def server(lm_folder, adapter_folders):
    entry = load_entry(lm_folder, "tiny", max_num_seqs=8,
                       adapters={n: adapter_folders / n for n in "ab"})
    with BackgroundServer(create_app({"tiny": entry})) as live:
        yield live, entry


def alone(lm_folder, folder) -> list[int]:
    """The adapter applied alone, in-process: plain LoRA layers and `generate`, greedy."""
    model = load(lm_folder)[0]
    if folder is not None:
        model = load_adapter(model, folder)
    return generate(model.eval(), torch.tensor([PROMPT]), NEW)[0, len(PROMPT):].tolist()


def complete(url: str, model: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/completions", timeout=60, json={
        "model": model, "prompt": PROMPT, "max_tokens": NEW, "temperature": 0,
        "ignore_eos": True, "logprobs": 0})


def test_each_request_gets_its_adapter_in_one_shared_batch(server, lm_folder, adapter_folders):
    live, entry = server
    tok = entry.tokenizer
    want = {m: tok.decode(alone(lm_folder, f)) for m, f in [
        ("tiny", None), ("tiny:a", adapter_folders / "a"), ("tiny:b", adapter_folders / "b")]}
    assert len(set(want.values())) == 3  # the adapters really change the output
    before = entry.stats()["mixed_adapter_passes"]
    models = ["tiny:a", "tiny:b", "tiny", "tiny:b", "tiny:a"]
    got: dict[int, tuple[str, str]] = {}
    start = threading.Barrier(len(models))

    def run(i: int, model: str) -> None:
        start.wait()
        response = complete(live.url, model)
        response.raise_for_status()
        body = response.json()
        got[i] = (body["model"], body["choices"][0]["text"])

    threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate(models)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each answer names the model asked for (adapter included) and is that adapter's text.
    assert [got[i] for i in range(len(models))] == [(m, want[m]) for m in models]
    # Forward passes whose rows used different adapters: the requests shared a batch.
    assert entry.stats()["mixed_adapter_passes"] > before


def test_models_lists_adapters_and_unknown_adapter_is_404(server):
    live, _ = server
    ids = {c["id"]: c for c in httpx.get(f"{live.url}/v1/models").json()["data"]}
    assert set(ids) == {"tiny", "tiny:a", "tiny:b"} and ids["tiny:a"]["parent"] == "tiny"
    assert httpx.get(f"{live.url}/v1/models/tiny:b").json()["id"] == "tiny:b"
    for name in ["tiny:nope", "tiny:", "nope:a"]:
        response = complete(live.url, name)
        assert response.status_code == 404, name
        error = response.json()["error"]
        assert error["code"] == "model_not_found" and "tiny:a" in error["message"]


def test_serve_adapter_flag_bad_input_is_one_line(lm_folder, tmp_path, free_port):
    """`lmstack serve --adapter` refuses what cannot be served, in one line, exit non-zero."""
    for item, words in [("noequals", "takes NAME=FOLDER"), (f"a={tmp_path / 'no'}", "no such")]:
        with pytest.raises(UserError, match=words):
            parse_adapter(item)
    result = run_lmstack("serve", str(lm_folder), "--port", str(free_port),
                         "--adapter", f"a={tmp_path}")  # a folder, but no adapter in it
    assert result.returncode != 0, result
    assert "is not a PEFT adapter folder" in result.stderr + result.stdout, result
    assert "Traceback" not in result.stderr
