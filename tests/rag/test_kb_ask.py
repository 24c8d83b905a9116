"""`lmstack apps kb ask` over a real SQLite knowledge base: the streamed answer, then its
sources as the model cited them or as attributed; "not in the documents" when nothing
matches; and the whole command as a subprocess on a tiny real model through the engine."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import run_lmstack
from rag_helpers import ScriptedChat
from typer.testing import CliRunner

from lmstack.cli import app
from lmstack.cli.args import UserError
from lmstack.models import LlamaConfig, LlamaForCausalLM, save_model
from lmstack.rag.pipeline import NOT_FOUND
from lmstack.tokenizer import train_bpe_from_iterator

FILES = {"guide/install.md": "# Install\n\nRun pip install lmstack to install the package.",
         "notes/tea.txt": "Green tea is steeped in water below boiling.",
         "notes/store.txt": "The knowledge base keeps chunks in SQLite."}


@pytest.fixture
def kb(tmp_path):
    root = tmp_path / "docs"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    made = CliRunner().invoke(app, ["apps", "kb", "ingest", str(root), "--kb",
                                    str(tmp_path / "kb"), "--retriever", "bm25"])
    assert made.exit_code == 0, made.output
    return tmp_path / "kb"


def ask(kb, monkeypatch, reply: str, question: str):
    """Run `kb ask` in-process with the model replaced by one that says `reply`."""
    model = ScriptedChat(reply)
    monkeypatch.setattr("lmstack.engine.chat_model.EngineChatModel", lambda *a, **kw: model)
    result = CliRunner().invoke(app, ["apps", "kb", "ask", question, "--kb", str(kb),
                                      "--k", "2"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output, model


def test_ask_streams_the_answer_then_its_cited_source(kb, monkeypatch):
    out, model = ask(kb, monkeypatch, "Run pip install lmstack [1].",
                     "How do I install lmstack?")
    assert out.startswith("Run pip install lmstack [1].")
    assert "[1] guide/install.md chars 0-58: # Install" in out
    assert "attributed" not in out
    assert "Question: How do I install lmstack?" in model.prompts[0][-1]["content"]


def test_an_uncited_answer_shows_the_attributed_source(kb, monkeypatch):
    out, _ = ask(kb, monkeypatch, "You run pip install lmstack.", "How do I install lmstack?")
    assert "[1] guide/install.md chars 0-58 (attributed" in out
    out, _ = ask(kb, monkeypatch, "Bananas.", "How do I install lmstack?")
    assert "no source cited or found to hold the answer; retrieved: guide/install.md" in out


def test_nothing_matching_is_not_in_the_documents(kb, monkeypatch):
    out, model = ask(kb, monkeypatch, "made up [1]", "zebra xylophone")
    assert NOT_FOUND in out and model.prompts == []
    blank = CliRunner().invoke(app, ["apps", "kb", "ask", "  ", "--kb", str(kb)])
    # main() turns a UserError into one line and exit 2 (tests/test_cli_usage.py).
    assert isinstance(blank.exception, UserError) and "give a question" in str(blank.exception)


def test_ask_as_a_subprocess_on_a_tiny_model(kb, tmp_path):
    folder = tmp_path / "tiny"
    tok = train_bpe_from_iterator(["Run pip install lmstack to install the package."] * 20,
                                  vocab_size=300, show_progress=False)
    torch.manual_seed(0)
    save_model(LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True)).eval(), folder)
    tok.save(folder)
    result = run_lmstack("apps", "kb", "ask", "How do I install lmstack?", "--kb", str(kb),
                         "--model", str(folder), "--max-tokens", "6")
    assert result.returncode == 0, result.stderr
    # Random weights say nothing in particular; the sources part still names the document.
    assert "guide/install.md" in result.stdout
