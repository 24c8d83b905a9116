"""`lmstack eval ...`: perplexity, multiple choice and the report card from the command line.

A thin shell over lmstack.evals (scoring as lm-evaluation-harness does); user errors raise
ValueError, which `lmstack.cli.main` prints as one line with exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate models.")
console = Console()


def _load(model: str):
    import lmstack

    m, tok = lmstack.load(model)
    if not hasattr(m, "lm_head") or tok is None:
        raise ValueError(f"{model} is not a causal language model with a tokenizer; "
                         "these evaluations need one")
    return m, tok


def _progress(total: int, what: str):
    from rich.progress import Progress

    bar = Progress(console=console, transient=True)
    task = bar.add_task(what, total=total)
    return bar, lambda n: bar.advance(task, n)


@eval_app.command("ppl")
def eval_ppl(
    model: str = typer.Argument(..., help="model folder, GGUF file or short name (smollm2), "
                                "with its tokenizer"),
    file: Path = typer.Argument(..., help="held-out UTF-8 text file"),
    seq_len: int = typer.Option(256, help="window length in tokens"),
    stride: int | None = typer.Option(None, help="window step (default seq_len/2)"),
    bf16: bool = typer.Option(False, metavar="", help="run under bfloat16 autocast"),
) -> None:
    """Perplexity (per token) and loss per character of a causal LM on a text file."""
    from lmstack.evals import text_perplexity

    if not file.is_file():
        raise ValueError(f"no such file: {file}")
    m, tok = _load(model)
    out = text_perplexity(m, tok, file.read_text(encoding="utf-8"), seq_len=seq_len,
                          stride=stride, precision="bf16" if bf16 else "fp32")
    table = Table(title=f"{model} on {file}", show_header=False)
    table.add_row("tokens scored", f"{out['tokens']:,}")
    table.add_row("loss / token (nats)", f"{out['loss']:.4f}")
    table.add_row("perplexity / token", f"{out['ppl']:.2f}")
    table.add_row("loss / character (nats)", f"{out['loss_per_char']:.4f}")
    table.add_row("bits / character", f"{out['bits_per_char']:.4f}")
    console.print(table)


@eval_app.command("mc")
def eval_mc(
    model: str = typer.Argument(..., help="model folder, GGUF file or short name (smollm2)"),
    data: Path = typer.Option(..., "--data", help="JSONL: centerpiece, options, "
                              "correct_options_idx (ARC's shape)"),
    shots: int = typer.Option(0, "--shots", help="solved examples before each question"),
    limit: int | None = typer.Option(None, help="score only the first n questions"),
    seed: int = typer.Option(1234, help="seed of the per-question few-shot sample"),
    out: Path | None = typer.Option(None, "--out", "-o", help="per-question scores (JSONL)"),
    generative: bool = typer.Option(False, metavar="", help="generate an answer letter "
                                    "through the chat template instead of log-likelihoods"),
) -> None:
    """Multiple-choice accuracy: acc and acc_norm as lm-evaluation-harness defines them."""
    from lmstack.evals import evaluate_mc, few_shot_pool, load_questions

    if shots < 0:
        raise ValueError(f"--shots must be >= 0, got {shots}")
    questions = load_questions(data, limit=limit)
    pool = load_questions(few_shot_pool(data))
    m, tok = _load(model)
    if generative:
        r = _generative(m, tok, questions, shots, pool, seed)
    else:
        bar, advance = _progress(sum(len(q.choices) for q in questions), "scoring choices")
        with bar:
            r = evaluate_mc(m, tok, questions, shots=shots, pool=pool, seed=seed,
                            on_progress=advance)
    if out:
        from lmstack.evals.multiple_choice import write_jsonl

        write_jsonl(out, r["records"])
    table = Table(title=f"{model} on {data} ({shots}-shot, {r['n']} questions)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("95% CI", justify="right")
    for key in ("acc", "acc_norm"):
        if key in r:
            lo, hi = r[f"{key}_ci95"]
            table.add_row(key, f"{r[key]:.4f}", f"{lo:.3f}-{hi:.3f}")
    if generative:
        table.add_row("unreadable replies", str(r["unreadable"]), "")
    console.print(table)


def _generative(model, tok, questions, shots, pool, seed) -> dict:
    from lmstack.engine import Engine, SamplingParams
    from lmstack.evals.generative_choice import evaluate_generative

    engine = Engine(model, tok)

    def generate(prompts: list[str]) -> list[str]:
        chats = [tok.apply_chat_template([{"role": "user", "content": p}],
                                         add_generation_prompt=True) for p in prompts]
        outs = engine.generate(chats, SamplingParams(max_tokens=8, temperature=0))
        return [o.text for o in outs]

    return evaluate_generative(generate, questions, shots=shots, pool=pool, seed=seed)


@eval_app.command("report")
def eval_report(
    model: str = typer.Argument(..., help="model folder, GGUF file or short name (smollm2)"),
    out: Path = typer.Option(Path("runs/report"), "--out", "-o", help="folder for report.md"),
    data: list[Path] | None = typer.Option(None, "--data", help="multiple-choice JSONL files "
                                           "(default: ARC-Easy and ARC-Challenge test sets)"),
    limit: int = typer.Option(100, help="first n questions of each set"),
    shots: str = typer.Option("0,5", help="shot counts, comma-separated"),
    text: Path | None = typer.Option(None, help="held-out text for perplexity (default: the "
                                     "start of tinyshakespeare when ../shared/data is there)"),
    text_chars: int = typer.Option(20_000, help="characters of that text to score"),
) -> None:
    """A markdown report card with plots: perplexity, accuracy per shot count, calibration."""
    from lmstack.demo.corpus import find_shared_data
    from lmstack.evals import few_shot_pool, load_questions
    from lmstack.evals.report import report_card

    try:
        counts = sorted({int(s) for s in shots.split(",") if s.strip()})
    except ValueError:
        raise ValueError(f"--shots takes comma-separated integers like 0,5; got {shots!r}"
                         ) from None
    shared = find_shared_data()
    if not data:
        if shared is None:
            raise ValueError("no --data given and ../shared/data is not there; pass --data FILE")
        data = [shared / "multiple_choice" / s / "test.json" for s in ("arc-easy",
                                                                         "arc-challenge")]
    sets = {(p.parent.name if p.name == "test.json" else p.stem):
            (load_questions(p, limit=limit), load_questions(few_shot_pool(p))) for p in data}
    if text is None and shared is not None and (shared / "pretrain/tinyshakespeare.txt"
                                                 ).is_file():
        text = shared / "pretrain" / "tinyshakespeare.txt"
    if text is not None and not text.is_file():
        raise ValueError(f"no such file: {text}")
    m, tok = _load(model)
    body = text.read_text(encoding="utf-8")[:text_chars] if text else None
    total = sum(len(q.choices) for qs, _ in sets.values() for q in qs) * len(counts)
    bar, advance = _progress(total, "report card")
    with bar:
        path = report_card(m, tok, str(model), out, sets, counts, body, on_progress=advance)
    console.print(f"wrote {path} (and report.png, results.json)")


def adapted_chat_model(model: str, adapter: Path):
    """A ChatModel on MODEL with the adapter merged in, prompted with the adapter folder's
    tokenizer when it has one (a tool-use adapter is trained with its own chat template)."""
    from lmstack.adapt import merge_and_unload
    from lmstack.adapt.peft_files import load_adapter
    from lmstack.engine import Engine
    from lmstack.engine.chat_model import EngineChatModel
    from lmstack.tokenizer import Tokenizer

    m, tok = _load(model)
    if (adapter / "tokenizer.json").is_file():
        tok = Tokenizer.from_folder(adapter)
    merged = merge_and_unload(load_adapter(m, adapter)).eval()
    return EngineChatModel(Engine(merged, tok, column_major=True), name=f"{model}+adapter")


agent_app = typer.Typer(no_args_is_help=True, help="Agents: evaluate tool calling.")


@agent_app.command("eval")
def agent_eval(
    model: str = typer.Argument("smollm2", help="model folder, GGUF file or short name, run "
                                "in process (ignored with --url)"),
    data: Path | None = typer.Option(None, "--data", help="folder with BFCL_v4_*.json and "
                                     "possible_answer/ (default: ../shared/data/"
                                     "function_calling when present)"),
    category: list[str] | None = typer.Option(None, "--category", help="live_simple, multiple, "
                                              "parallel_multiple, irrelevance (repeat; "
                                              "default: live_simple, multiple, irrelevance)"),
    limit: int | None = typer.Option(None, help="first n cases of each category"),
    constrained: bool = typer.Option(False, metavar="", help="force a call decoded under its "
                                     "schema (tool_choice=required)"),
    url: str | None = typer.Option(None, help="an OpenAI-compatible endpoint to evaluate "
                                   "instead, e.g. http://127.0.0.1:8000/v1"),
    out: Path | None = typer.Option(None, "--out", "-o", help="per-case results (JSONL)"),
    adapter: Path | None = typer.Option(None, "--adapter", help="a PEFT LoRA folder to apply "
                                        "to MODEL first (its tokenizer too, when it holds one)"),
) -> None:
    """Tool-calling accuracy on BFCL cases (AST comparison with the possible answers)."""
    from lmstack.adapt.peft_folder import check_adapter_folder
    from lmstack.demo.corpus import find_shared_data
    from lmstack.evals.function_calling import evaluate, load_cases

    if adapter is not None:
        check_adapter_folder(adapter)  # before the data and the model load
    if data is None:
        shared = find_shared_data()
        if shared is None:
            raise ValueError("no BFCL data found; pass --data FOLDER (BFCL_v4_*.json inside)")
        data = shared / "function_calling"
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be >= 1, got {limit}")
    cases = [c for cat in category or ["live_simple", "multiple", "irrelevance"]
             for c in load_cases(data, cat, limit)]
    if url:
        from lmstack.chat import OpenAIChatModel

        chat_model = OpenAIChatModel(url)
    else:
        from lmstack.engine.chat_model import EngineChatModel

        chat_model = adapted_chat_model(model, adapter) if adapter else EngineChatModel(model)
    bar, advance = _progress(len(cases), "calling tools")
    with bar:
        r = evaluate(chat_model, cases, constrained, on_case=lambda _: advance(1))
    if out:
        from lmstack.evals.multiple_choice import write_jsonl

        write_jsonl(out, r["records"])
    mode = "constrained (tool_choice=required)" if constrained else "free (tool_choice=auto)"
    name = url or (f"{model} + {adapter}" if adapter else model)
    table = Table(title=f"BFCL, {name}, {mode}")
    table.add_column("category")
    table.add_column("cases", justify="right")
    table.add_column("accuracy", justify="right")
    for cat, acc in r["accuracy"].items():
        table.add_row(cat, str(r["cases"][cat]), f"{acc:.3f}")
    table.add_row("replies with a call", str(len(cases)), f"{r['made_a_call']:.3f}")
    console.print(table)
