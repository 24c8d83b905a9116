"""`lmstack <stage> <verb>`: a thin shell over the library (typer + rich).

Every command catches the errors a user can cause and prints one line saying what is wrong
and how to fix it, with a non-zero exit, instead of a traceback. Heavy imports (torch) happen
inside commands so `lmstack --help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lmstack.apps.sentiment.cli import sentiment_app
from lmstack.apps.support.cli import support_app
from lmstack.cli.args import DEFAULT_MODEL, MODEL_HELP, UserError, model_path
from lmstack.cli.kb import kb_app
from lmstack.cli.quant import quant
from lmstack.cli.rag import rag_app
from lmstack.cli.serve import serve
from lmstack.eval_cli import agent_app, eval_app
from lmstack.learn.command import learn

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="lmstack: the LLM stack, from attention to agents.")
tokenizer_app = typer.Typer(no_args_is_help=True, help="Train byte-level BPE tokenizers.")
app.add_typer(tokenizer_app, name="tokenizer")
app.command(name="learn")(learn)
apps_app = typer.Typer(no_args_is_help=True, help="The roadmap's projects, end to end.")
apps_app.add_typer(sentiment_app, name="sentiment")
apps_app.add_typer(kb_app, name="kb")  # lmstack/cli/kb.py: ingest, ask, serve
apps_app.add_typer(support_app, name="support")  # lmstack/apps/support/cli.py
app.add_typer(apps_app, name="apps")
app.command(name="quant")(quant)  # lmstack/cli/quant.py: quantize to a folder, or `quant eval`
app.command(name="serve")(serve)  # lmstack/cli/serve.py: the OpenAI API, replica-ready
console = Console()
err_console = Console(stderr=True)


# Bad input rather than a bug in lmstack: ValueError covers UserError, ModelLoadError,
# TokenizerError and ConfigError; OSError a path that cannot be read or written, or a busy port.
USER_ERRORS = (ValueError, OSError)


# ---------------------------------------------------------------- foundation


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):  # powers of 1024: binary prefixes
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return ""


@app.command()
def info(path: Path = typer.Argument(..., help=MODEL_HELP)) -> None:
    """Architecture, parameter count, dtype and memory estimate of a model folder or GGUF file."""
    import torch

    from lmstack.models.default import resolve_model_path
    from lmstack.models.hub import load_model

    path = resolve_model_path(path)  # a missing folder: the loader's own line names the fix
    if path.suffix.lower() == ".gguf":
        return _info_gguf(path)
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


def _info_gguf(path: Path) -> None:
    from lmstack.models.gguf import describe_gguf

    d = describe_gguf(path)
    table = Table(title=str(path), show_header=False)
    table.add_row("architecture", f"{d['architecture']} (GGUF)")
    if d["name"]:
        table.add_row("name", d["name"])
    for key, value in d["hparams"].items():
        table.add_row(key, str(value))
    n = d["parameters"]
    table.add_row("parameters", f"{n:,} ({n / 1e6:.1f}M)")
    for kind, t in d["tensor_types"].items():
        table.add_row(f"tensors {kind}", f"{t['tensors']} tensors, {t['parameters']:,} params, "
                      f"{_format_bytes(t['bytes'])}")
    table.add_row("tensor bytes", f"{_format_bytes(d['tensor_bytes'])} "
                  f"({8 * d['tensor_bytes'] / max(n, 1):.2f} bits/param)")
    table.add_row("file size", _format_bytes(d["file_bytes"]))
    table.add_row("tokenizer", f"{d['tokenizer'] or 'none'}"
                  + (", chat template" if d["chat_template"] else ""))
    console.print(table)


@tokenizer_app.command("train")
def tokenizer_train(
    files: list[Path] = typer.Argument(..., help="text files to learn merges from"),
    out: Path = typer.Option(..., "--out", "-o", help="folder to write tokenizer.json into"),
    vocab_size: int = typer.Option(8000, help="target vocabulary size"),
    special: list[str] | None = typer.Option(
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
    minutes: float = typer.Option(3.0, help="training time budget (wall clock)"),
    stages: str | None = typer.Option(
        None, help="comma-separated stages to run, e.g. corpus,tokenizer (default: all of "
        "lmstack/demo/stage_*.py that run by default); a later stage reuses OUT's artifacts"),
) -> None:
    """The main job end to end on built-in defaults; writes OUT/report.md with plots."""
    from lmstack.demo import run_demo

    if not minutes > 0:
        raise UserError("--minutes must be more than 0")
    report = run_demo(out, corpus=corpus, minutes=minutes, console=console, stages=stages)
    console.print(f"[bold green]report:[/] {report}")


# ---- formats

export_app = typer.Typer(no_args_is_help=True, help="Convert models to other formats.")
app.add_typer(export_app, name="export")


@export_app.command("gguf")
def export_gguf_command(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="the .gguf file to write"),
    type_: str = typer.Option("f16", "--type", help="f32, f16, q8_0, q4_0 or q4_1"),
) -> None:
    """Write a Llama-family model and its tokenizer as a GGUF file (llama.cpp's format)."""
    import lmstack
    from lmstack.models.gguf_export import EXPORT_TYPES, export_gguf

    if type_ not in EXPORT_TYPES:
        raise UserError(f"--type must be one of {', '.join(EXPORT_TYPES)}, not {type_!r}")
    m, tok = lmstack.load(model)
    export_gguf(m, tok, out, type_)
    console.print(f"wrote {out} ({type_}, {_format_bytes(out.stat().st_size)})"
                  + ("" if tok is not None else "; no tokenizer found, weights only"))


@export_app.command("onnx")
def export_onnx_command(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="the folder to write model.onnx into"),
    int8: bool = typer.Option(False, "--int8", help="also write model_int8.onnx (onnxruntime's "
                              "dynamic int8 quantization)"),
) -> None:
    """Write a Llama-family decoder with KV-cache inputs/outputs as ONNX (optimum's layout),
    then check ONNX Runtime's logits against lmstack's."""
    import importlib.util

    missing = [p for p in ("onnx", "onnxruntime") if importlib.util.find_spec(p) is None]
    if missing:
        raise UserError(f"ONNX export needs {' and '.join(missing)}; run: pip install onnx "
                        "onnxruntime")
    import lmstack
    from lmstack.quant.onnx_export import export_folder
    from lmstack.quant.onnx_runtime import OnnxDecoderSession, logit_gap

    m, tok = lmstack.load(model_path(model))
    probe = [i % m.config.vocab_size for i in range(1, 11)]  # 8 prompt tokens, 2 after a past
    for path in export_folder(m, tok, out, int8):
        gap = logit_gap(m, OnnxDecoderSession(path), probe[:8], probe[8:])
        console.print(f"wrote {path} ({_format_bytes(path.stat().st_size)}); largest logit "
                      f"difference from lmstack: {gap:.2e}")


PRUNE_METHODS = ("magnitude", "heads", "channels")


@app.command()
def prune(
    model: Path = typer.Argument(..., help=MODEL_HELP),
    method: str = typer.Option(..., "--method", help="magnitude (zero the smallest weights), "
                               "heads (remove attention heads) or channels (remove MLP channels)"),
    sparsity: float = typer.Option(..., "--sparsity", help="fraction to remove, between 0 and 1"),
    out: Path = typer.Option(..., "--out", "-o", help="the model folder to write"),
    calibration: Path | None = typer.Option(
        None, "--calibration", help="a text file: heads/channels are then scored by their "
        "activations on its first 512 tokens, not by weights alone (much better on real models)"),
) -> None:
    """Prune a Llama-family model once and save it as a model folder."""
    if method not in PRUNE_METHODS:
        raise UserError(f"--method must be one of {', '.join(PRUNE_METHODS)}, not {method!r}")
    if not 0.0 < sparsity < 1.0:
        raise UserError(f"--sparsity must be between 0 and 1 (e.g. 0.5), not {sparsity}")
    if calibration is not None:
        from lmstack.fileio import check_text_file

        check_text_file(calibration)
    import torch

    import lmstack
    from lmstack.quant.prune import prune_magnitude
    from lmstack.quant.structured import keep_channels, keep_heads, shrink

    m, tok = lmstack.load(model_path(model))
    calib = None
    if calibration is not None and method != "magnitude":
        if tok is None:
            raise UserError(f"{model} has no tokenizer to read --calibration with; leave it out")
        calib = torch.tensor([tok.encode(calibration.read_text(encoding="utf-8"))[:512]])
    before = m.num_parameters()
    if method == "magnitude":
        pruner = prune_magnitude(m, sparsity)
        what = f"{pruner.sparsity():.1%} of the projection weights are now zero"
    elif method == "heads":
        m = shrink(m, heads=keep_heads(m, sparsity, calib))
        what = f"{m.config.num_attention_heads} attention heads per layer remain"
    else:
        m = shrink(m, channels=keep_channels(m, sparsity, calib))
        what = f"{m.config.intermediate_size} MLP channels per layer remain"
    m.save_pretrained(out)
    if tok is not None:
        tok.save(out)
    console.print(f"wrote {out}: {what}; parameters {before:,} -> {m.num_parameters():,}")


# ---- training

data_app = typer.Typer(no_args_is_help=True, help="Prepare training data.")
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")  # lmstack/eval_cli.py: ppl, mc, report
app.add_typer(agent_app, name="agent")  # lmstack/eval_cli.py: agent eval (BFCL)
app.add_typer(rag_app, name="rag")  # lmstack/cli/rag.py: eval


@data_app.command("prepare")
def data_prepare(
    files: list[Path] = typer.Argument(..., help="text (.txt) or JSON-lines (.jsonl) files"),
    tokenizer: Path = typer.Option(..., "--tokenizer", "-t", help="tokenizer folder"),
    out: Path = typer.Option(..., "--out", "-o", help="folder for the shards and meta.json"),
    val_fraction: float = typer.Option(0.05, help="tail of each file held out for validation"),
    text_key: str = typer.Option("text", help="JSONL field holding the text"),
    shard_tokens: int = typer.Option(100_000_000, help="tokens per shard file"),
) -> None:
    """Tokenize files into numpy memmap shards (uint16/uint32) with a train/val split."""
    import json

    from lmstack.data import prepare_shards
    from lmstack.tokenizer import Tokenizer

    tok = Tokenizer.from_folder(tokenizer)
    folder = prepare_shards(files, tok, out, val_fraction, shard_tokens, text_key)
    meta = json.loads((folder / "meta.json").read_text())
    splits = ", ".join(f"{k} {v['tokens']:,} tokens / {v['documents']:,} docs"
                       for k, v in meta["splits"].items())
    console.print(f"wrote {folder} ({meta['dtype']}): {splits}")


@app.command()
def train(
    config: Path = typer.Option(..., "--config", "-c", help="YAML training config"),
    resume: bool = typer.Option(False, "--resume", metavar="",  # a flag: show no <bool>
                                help="continue from the latest checkpoint"),
    set_: list[str] | None = typer.Option(
        None, "--set", help="override a key, e.g. --set training.max_steps=100 (repeatable)"),
) -> None:
    """Train a model as a YAML config says (under torchrun: DDP/FSDP across processes)."""
    from lmstack.train import TrainingInterrupted, load_config, train_from_config

    cfg = load_config(config, _overrides(set_))
    try:  # train_from_config prints the summary (from rank 0 only under torchrun)
        train_from_config(cfg, resume=resume, console=console)
    except TrainingInterrupted as e:  # Ctrl-C: say where things stand; 130 as for SIGINT
        if e.is_main:
            err_console.print(str(e), highlight=False, soft_wrap=True)
        sys.exit(130)  # not typer.Exit: click returns that code instead of exiting with it


def _overrides(items: list[str] | None) -> dict:
    """`--set a.b=VALUE` options as {"a.b": VALUE}, each value read as YAML."""
    import yaml

    overrides = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


@app.command()
def finetune(
    config: Path = typer.Option(..., "--config", "-c", help="YAML fine-tuning config"),
    method: str | None = typer.Option(
        None, help="full, lora, dora, prefix, prompt, ia3 or adapter (overrides the config)"),
    objective: str | None = typer.Option(
        None, help="sft, dpo, orpo, distill or classify (overrides the config)"),
    set_: list[str] | None = typer.Option(
        None, "--set", help="override a key, e.g. --set training.max_steps=50 (repeatable)"),
) -> None:
    """Fine-tune a model (SFT, DPO, ORPO, distillation) fully or with an adapter such as LoRA."""
    from lmstack.train import TrainingInterrupted
    from lmstack.train.finetune import finetune_from_config
    from lmstack.train.finetune_config import load_finetune_config

    overrides = _overrides(set_)
    overrides.update({k: v for k, v in (("method", method), ("objective", objective)) if v})
    cfg = load_finetune_config(config, overrides)
    try:
        summary = finetune_from_config(cfg, console=console)
    except TrainingInterrupted as e:
        err_console.print(str(e), highlight=False, soft_wrap=True)
        sys.exit(130)
    if "val_loss" in summary:
        console.print(f"val loss {summary['val_loss']:.4f} after {summary['step']} steps")
    console.print(f"[bold green]saved:[/] {summary['saved']}")


# ---- inference


@app.command()
def chat(
    path: Path = typer.Argument(DEFAULT_MODEL, help=MODEL_HELP + ", with its tokenizer"),
    system: str | None = typer.Option(None, help="system prompt"),
    max_tokens: int = typer.Option(256, help="longest reply, in tokens"),
    temperature: float = typer.Option(0.7, help="0 is greedy"),
    top_p: float = typer.Option(0.95, help="nucleus sampling mass"),
    seed: int | None = typer.Option(None, help="make replies reproducible"),
    adapter: Path | None = typer.Option(None, help="a PEFT adapter folder to apply (`lmstack "
                                        "finetune`'s OUT/adapter: LoRA, DoRA, IA3, prompt, prefix)"),
) -> None:
    """Chat with a model in the terminal: /reset starts over, /exit (or Ctrl-D) quits."""
    import time

    from lmstack.engine.chat_model import EngineChatModel

    model_path(path)
    model = EngineChatModel(path, adapter=adapter)  # a short name stays its name in the banner
    start = [{"role": "system", "content": system}] if system else []
    history = list(start)
    console.print(f"[bold]{escape(model.name)}[/] ready: /reset clears the conversation, "
                  "/exit quits, Ctrl-C stops a reply.")
    while True:
        try:
            line = console.input("[bold cyan]you>[/] ").strip()
        except EOFError:
            console.print()
            return
        except KeyboardInterrupt:  # Ctrl-C at the prompt ends the session, and says so
            console.print()
            err_console.print(f"interrupted after {len(history) - len(start)} messages; "
                              "nothing is saved", highlight=False)
            raise typer.Exit(130) from None
        if line in ("/exit", "/quit"):
            return
        if line == "/reset":
            history = list(start)
            continue
        if not line:
            continue
        history.append({"role": "user", "content": line})
        console.print("[bold green]model>[/] ", end="")
        reply, t0 = [], time.perf_counter()
        stream = model.stream(history, max_tokens=max_tokens, temperature=temperature,
                              top_p=top_p, seed=seed)
        try:
            for delta in stream:
                reply.append(delta)
                console.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
        except KeyboardInterrupt:
            stream.close()  # aborts the request in the engine
            console.print(" [dim][stopped][/]", end="")
        except ValueError as e:  # e.g. the conversation outgrew the context
            history.pop()
            console.print(f"\n[bold red]error:[/] {escape(str(e))} (try /reset)")
            continue
        n, dt = model.last_usage.completion_tokens, time.perf_counter() - t0
        console.print(f"\n[dim]{n} tokens, {n / max(dt, 1e-9):.1f} tok/s[/]")
        history.append({"role": "assistant", "content": "".join(reply)})


def _is_a(error: BaseException, class_name: str) -> bool:
    """Whether `error` derives from a class called `class_name`, whichever module defines it.

    typer raises exceptions from its own vendored copy of click (0.29) or from click itself
    (older releases); matching by name works for both, and for whatever comes next.
    """
    return any(cls.__name__ == class_name for cls in type(error).__mro__)


def main() -> None:
    try:
        # standalone_mode=False so user errors from commands reach the handler below; typer
        # then turns Ctrl-C into an exit code it returns rather than raises.
        code = app(standalone_mode=False)
    except Exception as e:  # the one place that turns user errors into one line
        if _is_a(e, "Exit"):
            sys.exit(e.exit_code)
        if _is_a(e, "ClickException"):  # usage errors: click's own message, exit 2
            e.show()
            sys.exit(e.exit_code)
        if _is_a(e, "Abort"):
            err_console.print("aborted")
            sys.exit(130)
        if isinstance(e, USER_ERRORS):
            # escape: paths and messages may hold [brackets] that rich would read as markup.
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False,
                              soft_wrap=True)
            sys.exit(2)
        raise
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
