"""The demo's training stage: a small Llama-style model on the demo corpus, in a time budget.

Follows the nanoGPT "baby GPT" recipe scaled to 2 CPU cores: a few million parameters, short
context, bf16 autocast, a warmup-cosine schedule fitted to the minutes the user allows.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import torch

DEMO_MODEL = {  # ≈ 4.2M parameters with a 4096-token vocabulary (embeddings tied to the head)
    "hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4,
    "num_attention_heads": 4, "num_key_value_heads": 4, "max_position_embeddings": 256,
    "tie_word_embeddings": True,
}
PROMPTS = {"stdlib": ["Return the", "This module provides", "The default value"],
           "shakespeare": ["ROMEO:\n", "First Citizen:\n", "KING RICHARD III:\n"],
           "tang_song_poems": ["静夜思\n", "春", "明月"]}


def demo_config(run: Any, seq_len: int = 128, precision: str = "auto") -> dict[str, Any]:
    return {
        "tokenizer": str(run.artifacts["tokenizer"]),
        "model": {"architecture": "LlamaForCausalLM", "config": DEMO_MODEL},
        "data": {"files": [str(run.artifacts["corpus"])], "seq_len": seq_len,
                 "val_fraction": 0.05},
        "optimizer": {"lr": 2e-3, "weight_decay": 0.1, "grad_clip": 1.0},
        "schedule": {"warmup_steps": 30, "min_lr_ratio": 0.1},
        "training": {"out_dir": str(run.out / "train"), "max_steps": 100_000,
                     "max_minutes": run.minutes, "micro_batch_size": 8, "grad_accum": 1,
                     "precision": precision, "threads": 2, "log_every": 5, "eval_every": 100,
                     "eval_batches": 16, "save_every": 100_000, "keep_last": 1,
                     "seed": 1337},
    }


def stage_train(run: Any) -> None:
    """Train, save the model folder at run.artifacts["model"], sample, add a report section."""
    from lmstack.models.generate import generate
    from lmstack.train import build_trainer, parse_config

    shutil.rmtree(run.out / "train", ignore_errors=True)
    cfg = parse_config(demo_config(run), "demo")
    torch.set_num_threads(cfg.training.threads)
    trainer = build_trainer(cfg, console=run.console)
    n_params = trainer.raw_model.num_parameters()
    # Fit the cosine schedule to the time budget: time a few steps, then fix the step count.
    trainer.train_step()
    t0 = time.perf_counter()
    for _ in range(3):
        trainer.train_step()
    per_step = (time.perf_counter() - t0) / 3
    budget_s = run.minutes * 60 * 0.92  # leave room for validation and the final checkpoint
    trainer.set_max_steps(max(10, int(budget_s / per_step)))
    trainer.scheduler.warmup = min(trainer.scheduler.warmup, max(1, trainer.max_steps // 10))
    run.console.print(f"{n_params / 1e6:.2f}M parameters; {per_step * 1000:.0f} ms/step → "
                      f"{trainer.max_steps} steps in {run.minutes:g} min")
    summary = trainer.fit()

    folder = run.out / "model"
    shutil.rmtree(folder, ignore_errors=True)
    model = trainer.raw_model.eval()
    model.save_pretrained(folder)
    trainer.tokenizer.save(folder)
    run.artifacts["model"] = folder
    shutil.copy(cfg.training.out_dir / "loss.png", run.out / "loss.png")

    tok, samples = trainer.tokenizer, []
    g = torch.Generator().manual_seed(0)
    for prompt in PROMPTS.get(run.corpus_name, PROMPTS["stdlib"]):
        ids = torch.tensor([tok.encode(prompt, add_special_tokens=False)])
        out = generate(model, ids, max_new_tokens=60, temperature=0.8, top_k=40,
                       eos_token_id=tok.eos_token_id, generator=g)
        samples.append(tok.decode(out[0].tolist(), skip_special_tokens=True))

    from lmstack.train.metrics import read_metrics

    speeds = [r["tok_per_s"] for r in read_metrics(trainer.log.path) if "tok_per_s" in r]
    speeds = sorted(speeds)[len(speeds) // 4:] or speeds  # skip the warm-up quarter
    tok_s = sum(speeds) / max(1, len(speeds))
    body = [
        (f"A Llama-style decoder ({n_params / 1e6:.2f}M parameters: hidden "
        f"{DEMO_MODEL['hidden_size']}, {DEMO_MODEL['num_hidden_layers']} layers, vocab "
        f"{len(tok)}, context {cfg.data.seq_len}) trained for {summary['step']} steps "
        f"({summary['tokens_seen']:,} tokens, {summary['elapsed'] / 60:.1f} min) on "
        f"{cfg.training.threads} CPU threads in {trainer.precision}, AdamW and "
        "a warmup-cosine schedule."),
        "",
        "![loss curve](loss.png)",
        "",
        "| metric | value |", "|---|---|",
        f"| validation loss (nats/token) | {summary.get('val_loss', float('nan')):.3f} |",
        f"| validation perplexity | {summary.get('val_ppl', float('nan')):.1f} |",
        f"| training throughput | {tok_s:,.0f} tokens/s |",
        "",
        (f"Model folder (HF format, with tokenizer): `{folder}`. Samples (temperature 0.8, "
         "top-k 40):"),
        "",
    ]
    for s in samples:
        body += ["```text", s.strip(), "```", ""]
    run.section("Pretraining", "\n".join(body))
