"""`lmstack quant MODEL --scheme S --out DIR` writes a quantized folder; `lmstack quant eval MODEL
--text FILE` prints what each scheme costs (perplexity, KL divergence, top-1 agreement)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lmstack.cli.args import UserError, model_path

console = Console()
SCHEME_HELP = ("int8 | int4 | int4-awq | q8_0 | q4_0 | q4_1 | gguf (keep a GGUF file's own "
               "Q8_0/Q4_0/Q4_1 blocks)")


def quant(
    target: str = typer.Argument(..., help="a model (folder, GGUF file, smollm2), or `eval`"),
    model: Path | None = typer.Argument(None, help="with `eval`: the model to evaluate"),
    scheme: str = typer.Option("int8", help=SCHEME_HELP),
    group: int = typer.Option(32, help="int4 group size: 32, 64 or 128"),
    symmetric: bool = typer.Option(False, help="int4 around zero (else min/max per group)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="folder to write"),
    text: Path | None = typer.Option(None, help="`eval` and int4-awq: a UTF-8 text file"),
    tokens: int = typer.Option(4096, help="`eval`: tokens of the text to score"),
) -> None:
    """Quantize a model's Linear layers to a folder (`lmstack serve`/`chat` run it), or with
    `eval`, compare fp32, bf16, int8, int4-RTN and int4-AWQ on a text."""
    if target == "eval":
        if model is None or text is None:
            raise UserError("usage: lmstack quant eval MODEL --text FILE")
        return _evaluate(model_path(model), _read(text), group, tokens)
    if model is not None:
        raise UserError(f"unexpected argument {model}; usage: lmstack quant MODEL --scheme S "
                        "--out DIR (or lmstack quant eval MODEL --text FILE)")
    if out is None:
        raise UserError("--out DIR is required: the folder to write the quantized model to")
    import lmstack
    from lmstack.quant import SCHEMES, model_bytes, save_quantized

    if scheme not in (*SCHEMES, "int4-awq", "gguf"):
        raise UserError(f"--scheme must be one of {SCHEME_HELP}, not {scheme!r}")
    if scheme == "int4-awq" and text is None:
        raise UserError("int4-awq calibrates on real text: pass --text FILE")
    path = model_path(Path(target))
    if scheme == "gguf":
        from lmstack.quant.gguf_native import load_gguf_native

        if path.suffix.lower() != ".gguf":
            raise UserError(f"--scheme gguf keeps a GGUF file's blocks; {target} is not one")
        m, tok = load_gguf_native(path)
        before = None
    else:
        m, tok = lmstack.load(path)
        before = model_bytes(m)
        _quantize(m, tok, scheme, group, symmetric, _read(text) if text else "")
    save_quantized(m, tok, out)
    was = "" if before is None else f"{before / 2**20:.1f} MiB -> "
    console.print(f"wrote {out} ({scheme}): weights {was}{model_bytes(m) / 2**20:.1f} MiB")


def _read(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"no such text file: {path}")
    return path.read_text(encoding="utf-8", errors="replace")


def _quantize(model, tokenizer, scheme: str, group: int, symmetric: bool, text: str):
    from lmstack.quant import quantize_model
    from lmstack.quant.awq import apply_awq, text_batches

    if scheme == "int4-awq":
        apply_awq(model, text_batches(tokenizer, text), group, symmetric)
        return quantize_model(model, "int4", group, symmetric, tag="awq")
    return quantize_model(model, scheme, group, symmetric)


def _evaluate(path: Path, text: str, group: int, tokens: int) -> None:
    import copy

    import torch

    import lmstack
    from lmstack.quant.quality import compare_to_reference, quality_table

    reference, tok = lmstack.load(path)
    if tok is None:
        raise UserError(f"{path} has no tokenizer; `quant eval` needs one to read the text")
    ids = torch.tensor(tok.encode(text, add_special_tokens=False))
    # The first half of the text calibrates AWQ, the second half is scored (held out).
    cal, held_out = text[: len(text) // 2], ids[len(ids) // 2:][:tokens]
    models = {"bf16": copy.deepcopy(reference).to(torch.bfloat16)}
    for name in ("int8", "int4", "int4-awq"):
        models[name] = _quantize(copy.deepcopy(reference), tok, name, group, False, cal)
    results = compare_to_reference(reference, models, held_out)
    table = Table("model", "perplexity", "Δ ppl", "mean KLD", "top-1 agreement",
                  title=f"{path.name}: {results['fp32']['tokens']} held-out tokens")
    for row in quality_table(results):
        table.add_row(*row)
    console.print(table)
