"""`lmstack <stage> <verb>`: a thin shell over the library (typer + rich).

Every command catches the errors a user can cause and prints one line saying what is wrong
and how to fix it, with a non-zero exit, instead of a traceback. Heavy imports (torch) happen
inside commands so `lmstack --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="lmstack: the LLM stack, from attention to agents.")
tokenizer_app = typer.Typer(no_args_is_help=True, help="Train and inspect tokenizers.")
app.add_typer(tokenizer_app, name="tokenizer")
console = Console()
err_console = Console(stderr=True)


class UserError(Exception):
    """Raised by commands for mistakes the user can fix; printed as one line, exit code 2."""


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors():
    """Exceptions that mean bad input rather than a bug in lmstack."""
    from lmstack.models.hub import ModelLoadError
    from lmstack.tokenizer import TokenizerError

    return (UserError, ModelLoadError, TokenizerError, FileNotFoundError, ValueError)


# ---------------------------------------------------------------- foundation


def _format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return ""


@app.command()
def info(path: Path = typer.Argument(..., help="a Hugging Face model folder")) -> None:
    """Architecture, parameter count, dtype and memory estimate of a model folder."""
    import torch

    from lmstack.models.hub import load_model

    model = load_model(path)
    cfg = model.config
    n = model.num_parameters()
    dtype = next(model.parameters()).dtype
    table = Table(title=str(path), show_header=False)
    table.add_row("architecture", cfg.architectures[0] if cfg.architectures else "?")
    table.add_row("model type", cfg.model_type)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "vocab_size", "max_position_embeddings"):
        value = getattr(cfg, key, None)
        if value is not None:
            table.add_row(key, str(value))
    table.add_row("parameters", f"{n:,} ({n / 1e6:.1f}M)")
    table.add_row("dtype", str(dtype).removeprefix("torch."))
    for name, size in (("float32", 4), ("bfloat16", 2), ("int8", 1), ("int4", 0.5)):
        table.add_row(f"weights in {name}", _format_bytes(n * size))
    if hasattr(cfg, "num_key_value_heads") and getattr(cfg, "head_dim", None):
        per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim
        per_token *= torch.finfo(dtype).bits // 8
        table.add_row("KV cache per token", _format_bytes(per_token))
        table.add_row("KV cache, full context",
                      _format_bytes(per_token * cfg.max_position_embeddings))
    console.print(table)


@tokenizer_app.command("train")
def tokenizer_train(
    files: list[Path] = typer.Argument(..., help="text files to learn merges from"),
    out: Path = typer.Option(..., "--out", "-o", help="folder to write tokenizer.json into"),
    vocab_size: int = typer.Option(8000, help="target vocabulary size"),
    special: Optional[list[str]] = typer.Option(
        None, "--special", help="special tokens (repeatable); default ChatML + endoftext"),
) -> None:
    """Train a byte-level BPE tokenizer on text files."""
    from lmstack.tokenizer import train_bpe

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UserError(f"no such file: {', '.join(missing)}")
    if vocab_size < 256 + len(special or []):
        raise UserError("--vocab-size must be at least 256 (one token per byte) plus specials")
    kwargs = {"special_tokens": special} if special else {}
    tok = train_bpe(files, vocab_size=vocab_size, **kwargs)
    tok.save(out)
    console.print(f"wrote {out} (vocab {tok.vocab_size})")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="where the report and artifacts go"),
    corpus: str = typer.Option("stdlib", help="'stdlib' (built in) or a name from ../shared/data"),
    minutes: float = typer.Option(3.0, help="training time budget"),
) -> None:
    """The main job end to end on built-in defaults; writes OUT/report.md with plots."""
    from lmstack.demo import run_demo

    report = run_demo(out, corpus=corpus, minutes=minutes, console=console)
    console.print(f"[bold green]report:[/] {report}")


def main() -> None:
    try:
        app(standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the one place that turns errors into one line
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, user_errors()):
            err_console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            sys.exit(2)
        raise
