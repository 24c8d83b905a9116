"""`lmstack finetune --method prompt|prefix`: a soft prompt and a prefix train through the same
command, Trainer and packed SFT rows as LoRA, and land as PEFT folders that `peft` loads with
the logits lmstack gives (PEFT's tolerance); a folder with its keys and values swapped (a
deliberate break) is caught. The saved adapter then chats offline (`lmstack chat --adapter`),
the server refuses it in one line, and bad options are one line naming the key."""

from __future__ import annotations

import json

import peft
import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from train_helpers import SFT, run_cli, write_config
from typer.testing import CliRunner

from lmstack import load
from lmstack.adapt.peft_files import load_adapter
from lmstack.cli import app
from lmstack.cli.args import parse_adapter
from lmstack.engine.chat_model import EngineChatModel
from lmstack.models.generate import generate
from lmstack.tokenizer.chat_prompt import chat_prompt_ids
from lmstack.train import ConfigError
from lmstack.train.finetune import build_finetune_trainer
from lmstack.train.finetune_config import load_finetune_config

TOL = {"atol": 1e-4, "rtol": 1e-4}
P = 4  # virtual tokens
OPTIONS = {"prompt": {"num_virtual_tokens": P, "prompt_tuning_init_text": "a tiny assistant"},
           "prefix": {"num_virtual_tokens": P, "prefix_projection": True,
                      "encoder_hidden_size": 16}}


def logits(model, ids):
    with torch.no_grad():
        out = model(ids)
    out = getattr(out, "logits", out)
    if isinstance(model, peft.PeftModel) and model.active_peft_config.peft_type == "PROMPT_TUNING":
        out = out[:, P:]  # PEFT returns the soft prompt's positions too
    return out


def in_peft(model_dir, folder):
    base = transformers.AutoModelForCausalLM.from_pretrained(model_dir)
    return peft.PeftModel.from_pretrained(base, folder).eval()


def swap_keys_and_values(folder, out):
    """The folder with every layer's prefix keys and values swapped (for prompt tuning, whose
    table is embeddings: its P rows reversed)."""
    config = json.loads((folder / "adapter_config.json").read_text())
    table = load_file(folder / "adapter_model.safetensors")["prompt_embeddings"]
    if config["peft_type"] == "PREFIX_TUNING":  # [P, layers * 2 * kv * d], keys then values
        table = table.view(P, config["num_layers"], 2, -1).flip(2).reshape(P, -1)
    else:  # [P, hidden]
        table = table.flip(0)
    out.mkdir()
    (out / "adapter_config.json").write_text(json.dumps(config))
    save_file({"prompt_embeddings": table.contiguous()}, out / "adapter_model.safetensors")
    return out


@pytest.mark.parametrize("method", ["prompt", "prefix"])
def test_finetune_cli_saves_what_peft_loads_with_equal_logits(tmp_path, model_dir, method):
    config = write_config(tmp_path, model_dir, SFT, method_options=OPTIONS[method])
    result = run_cli(["finetune", "--config", str(config), "--method", method], tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "adapter"
    log = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").open()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
    ids = torch.randint(5, 300, (2, 12), generator=torch.Generator().manual_seed(0))
    base = logits(load(model_dir)[0].eval(), ids)
    ours = logits(load_adapter(load(model_dir)[0], folder).eval(), ids)
    theirs = logits(in_peft(model_dir, folder), ids)
    assert (theirs - base).abs().max() > 1e-3  # the trained adapter changes the output
    torch.testing.assert_close(ours, theirs, **TOL)
    broken = logits(in_peft(model_dir, swap_keys_and_values(folder, tmp_path / "broken")), ids)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(ours, broken, **TOL)
    chat_and_serve_refusal(model_dir, folder)


def chat_and_serve_refusal(model_dir, folder):
    """The adapter answers offline (in-process and `lmstack chat --adapter`) with the tokens
    greedy `generate` gives the loaded adapter; `serve --adapter` says to use chat instead."""
    chat = EngineChatModel(model_dir, adapter=folder)
    messages = [{"role": "user", "content": "Who are you?"}]
    reply = chat.chat(messages, max_tokens=6, temperature=0).message.content
    ids = torch.tensor([chat_prompt_ids(chat.tokenizer, messages)])
    tokens = generate(load_adapter(load(model_dir)[0], folder).eval(), ids, 6)[0, ids.shape[1]:]
    assert reply == chat.tokenizer.decode(tokens.tolist(), skip_special_tokens=True)
    out = CliRunner().invoke(app, ["chat", str(model_dir), "--adapter", str(folder),
                                   "--max-tokens", "6", "--temperature", "0"],
                             input="Who are you?\n/exit\n")
    def printed(text: str) -> str:  # what a terminal shows, spacing aside
        return "".join(c for c in text if c.isprintable() and not c.isspace())

    assert out.exit_code == 0 and printed(reply) in printed(out.output), out.output
    with pytest.raises(ValueError, match="served side by side only as plain LoRA.*lmstack chat"):
        parse_adapter(f"mine={folder}")


@pytest.mark.parametrize("method", ["prompt", "prefix"])
def test_only_the_adapter_trains_through_packed_rows(tmp_path, model_dir, method):
    cfg = load_finetune_config(write_config(tmp_path, model_dir, SFT, method=method,
                                            method_options=OPTIONS[method]))
    trainer = build_finetune_trainer(cfg)
    model = trainer.raw_model
    assert cfg.data.pack and type(model).__name__ == {"prompt": "PromptTuned",
                                                      "prefix": "PrefixTuned"}[method]
    if method == "prompt":  # PEFT's TEXT init: the init text's token embeddings, repeated
        text = trainer.tokenizer.encode("a tiny assistant", add_special_tokens=False)
        rows = model.model.model.embed_tokens.weight[(text * P)[:P]]
        assert torch.equal(model.prompt_embeddings.detach(), rows)
    base = {n: p.detach().clone() for n, p in model.model.named_parameters()}
    trainer.forward_backward(trainer.draw_micro_batches())
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(not n.startswith("model.") for n in with_grad) and with_grad
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.fit()
    for name, p in model.model.named_parameters():
        assert torch.equal(p, base[name]), f"{name} changed"


def test_bad_options_are_one_line_naming_the_key(tmp_path, model_dir):
    with pytest.raises(ConfigError) as err:
        load_finetune_config(write_config(tmp_path, model_dir, SFT, method="prefix",
                                          method_options={"r": 4}))
    assert "method_options.r" in str(err.value) and "num_virtual_tokens" in str(err.value)
    assert "\n" not in str(err.value)
    config = write_config(tmp_path, model_dir, SFT, method_options={"num_virtual_token": 4})
    result = run_cli(["finetune", "--config", str(config), "--method", "prompt"], tmp_path)
    err = result.stderr.strip()
    assert result.returncode == 2 and len(err.splitlines()) == 1, err
    assert "method_options.num_virtual_token" in err and "Traceback" not in result.stdout
