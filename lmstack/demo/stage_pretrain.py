"""Demo stage `pretrain`: a small Llama-style model trained on the corpus for a wall-clock budget.

Follows the nanoGPT "baby GPT" recipe scaled to 2 CPU cores: a few million parameters, short
context, a warmup-cosine schedule whose length is re-fitted to the measured step time as it runs.
"""

from __future__ import annotations

import shutil
import statistics
import time
from typing import Any

from lmstack.demo.registry import Stage
from lmstack.demo.run import fence

DEMO_MODEL = {  # ≈ 4.2M parameters with a 4096-token vocabulary (embeddings tied to the head)
    "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
    "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 256,
    "tie_word_embeddings": True,
}
DEFAULTS = {"model": DEMO_MODEL, "seq_len": 128, "micro_batch_size": 8, "precision": "auto",
            "threads": 2, "eval_batches": 16, "warmup_steps": 30, "log_every": 5}
PROMPTS = {"stdlib": ["Return the", "This module provides", "The default value"],
           "shakespeare": ["ROMEO:\n", "First Citizen:\n", "KING RICHARD III:\n"],
           "tang_song_poems": ["静夜思\n", "春", "明月"]}
EVAL_AT = (0.25, 0.5, 0.75)  # fractions of the budget with a validation point (and the end)


def demo_config(run: Any, opts: dict[str, Any]) -> dict[str, Any]:
    return {
        "tokenizer": str(run.artifacts["tokenizer"]),
        "model": {"architecture": "LlamaForCausalLM", "config": opts["model"]},
        "data": {"files": [str(run.artifacts["corpus"])], "seq_len": opts["seq_len"],
                 "val_fraction": 0.05},
        "optimizer": {"lr": 2e-3, "weight_decay": 0.1, "grad_clip": 1.0},
        "schedule": {"warmup_steps": opts["warmup_steps"], "min_lr_ratio": 0.1},
        "training": {"out_dir": str(run.out / "train"), "max_steps": 1_000_000,
                     "micro_batch_size": opts["micro_batch_size"], "grad_accum": 1,
                     "precision": opts["precision"], "threads": opts["threads"],
                     "eval_batches": opts["eval_batches"], "seed": 1337},
    }


def train_for(trainer: Any, seconds: float, log_every: int, console: Any) -> dict[str, Any]:
    """Optimizer steps until the wall clock runs out, validating at EVAL_AT and at the end.

    The step count (and so the cosine's end) is re-fitted after every step from the median of
    recent step times, so a slow first step or a busier machine later cannot end training
    early or late; the final validation's time is kept back from the budget.
    """
    start = time.perf_counter()
    deadline = start + seconds
    step_times: list[float] = []
    eval_s: float | None = None
    marks = list(EVAL_AT)

    def validate() -> None:
        nonlocal eval_s
        t0 = time.perf_counter()
        val = trainer.evaluate()
        eval_s = time.perf_counter() - t0
        trainer.last_val = val
        if val:
            trainer.log.write({"step": trainer.step, **val})

    while True:
        t0 = time.perf_counter()
        stats = trainer.train_step()
        step_times.append(time.perf_counter() - t0)
        per_step = statistics.median(step_times[2:][-20:] or step_times)
        now = time.perf_counter()
        # Until one validation is measured, guess it: a forward is about a third of a step.
        reserve = eval_s if eval_s is not None else per_step * trainer.config.training.eval_batches / 3
        left = int((deadline - now - reserve) / per_step)
        trainer.set_max_steps(trainer.step + max(left, 0))
        if trainer.step == 3:  # first fit of the run's length: warm up over its first 10%
            trainer.scheduler.warmup = min(trainer.scheduler.warmup, max(1, trainer.max_steps // 10))
        done = left <= 0
        if trainer.step % log_every == 0 or done:
            elapsed = now - start
            trainer.log.write({"step": trainer.step, "loss": stats["loss"],
                               "lr": trainer.scheduler.get_last_lr()[0],
                               "tokens": trainer.tokens_seen, "elapsed": elapsed,
                               "tok_per_s": trainer.tokens_seen / max(elapsed, 1e-9)})
        if done:
            validate()
            break
        if marks and now - start >= marks[0] * seconds:
            marks.pop(0)
            validate()
            console.print(f"step {trainer.step}: loss {stats['loss']:.3f}, val loss "
                          f"{trainer.last_val.get('val_loss', float('nan')):.3f}, "
                          f"{now - start:.0f}/{seconds:.0f} s")
    elapsed = time.perf_counter() - start
    return {"step": trainer.step, "tokens_seen": trainer.tokens_seen, "elapsed": elapsed,
            "tok_per_s": trainer.tokens_seen / max(elapsed, 1e-9), **trainer.last_val}


def sample(model: Any, tok: Any, prompts: list[str], max_new_tokens: int = 60) -> list[str]:
    """Continuations only (prompt removed), temperature 0.8, top-k 40, fixed seed."""
    import torch

    from lmstack.models.generate import generate

    g, out = torch.Generator().manual_seed(0), []
    for prompt in prompts:
        ids = tok.encode(prompt, add_special_tokens=False)
        full = generate(model, torch.tensor([ids]), max_new_tokens=max_new_tokens,
                        temperature=0.8, top_k=40, eos_token_id=tok.eos_token_id, generator=g)
        out.append(tok.decode(full[0, len(ids):].tolist(), skip_special_tokens=True))
    return out


def stage_pretrain(run: Any) -> None:
    """Train, save the model folder at run.artifacts["model"], sample, add a report section."""
    import torch

    from lmstack.demo.verdict import judge_pretraining, unigram_entropy
    from lmstack.train import build_trainer, parse_config
    from lmstack.train.metrics import plot_loss_curve

    opts = run.settings("pretrain", DEFAULTS)
    shutil.rmtree(run.out / "train", ignore_errors=True)
    cfg = parse_config(demo_config(run, opts), "demo")
    torch.set_num_threads(cfg.training.threads)
    trainer = build_trainer(cfg, console=run.console)
    n_params = trainer.raw_model.num_parameters()
    run.console.print(f"{n_params / 1e6:.2f}M parameters in {trainer.precision}; training for "
                      f"{run.minutes:g} min of wall clock")
    summary = train_for(trainer, run.minutes * 60, opts["log_every"], run.console)

    folder = run.out / "model"
    shutil.rmtree(folder, ignore_errors=True)
    model = trainer.raw_model.eval()
    model.save_pretrained(folder)
    tok = trainer.tokenizer
    tok.save(folder)
    run.artifacts["model"] = folder
    plot_loss_curve(trainer.log.path, run.out / "loss.png", title="demo pretraining")

    prompts = PROMPTS.get(run.corpus_name, PROMPTS["stdlib"])
    continuations = sample(model, tok, prompts)
    corpus_ids = tok.encode(run.artifacts["corpus"].read_text(encoding="utf-8"),
                            add_special_tokens=False)
    val_loss = summary.get("val_loss", float("nan"))
    verdict = judge_pretraining(val_loss, unigram_entropy(corpus_ids), continuations,
                                summary["tokens_seen"], summary["tok_per_s"], run.minutes)
    body = [
        (f"A Llama-style decoder ({n_params / 1e6:.2f}M parameters: hidden "
         f"{opts['model']['hidden_size']}, {opts['model']['num_hidden_layers']} layers, vocab "
         f"{len(tok)}, context {cfg.data.seq_len}) trained for {summary['step']} steps "
         f"({summary['tokens_seen']:,} tokens in {summary['elapsed']:.0f} s of a "
         f"{run.minutes * 60:.0f} s budget) on {cfg.training.threads} CPU threads in "
         f"{trainer.precision}, AdamW and a warmup-cosine schedule."),
        "", "![loss curve](loss.png)", "",
        "| metric | value |", "|---|---|",
        f"| validation loss (nats/token) | {val_loss:.3f} |",
        f"| validation perplexity | {summary.get('val_ppl', float('nan')):.1f} |",
        (f"| training throughput | {summary['tok_per_s']:,.0f} tokens/s "
         "(tokens ÷ wall-clock seconds, validation included) |"),
        "", verdict, "",
        (f"Model folder (HF format, with tokenizer): `{folder}`. Samples (temperature 0.8, "
         "top-k 40), each the prompt and what the model added:"), "",
    ]
    for prompt, text in zip(prompts, continuations, strict=True):
        body += [fence(prompt + text), ""]
    run.section("Pretraining", "\n".join(body))


STAGE = Stage("pretrain", 30, stage_pretrain, "a small Llama trained for --minutes",
              needs=("corpus", "tokenizer"))
