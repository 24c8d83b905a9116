"""The one Trainer: accumulation, mixed precision, clipping, schedules, eval, checkpoints, DDP.

Follows the shape of nanoGPT's train.py and transformers' Trainer (loss normalised by the
number of targets in the whole accumulated batch, as its `num_items_in_batch` does).
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmstack.data.sampler import ResumableSampler
from lmstack.train import checkpoint as ckpt
from lmstack.train.config import TrainConfig
from lmstack.train.distributed import DistInfo, all_reduce_sum, barrier, wrap_model
from lmstack.train.metrics import MetricsLog, plot_loss_curve
from lmstack.train.objectives import METRIC_PREFIX, Objective, is_loss
from lmstack.train.optim import WarmupCosine, build_optimizer
from lmstack.train.precision import resolve_precision
from lmstack.train.progress import Progress

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingInterrupted(Exception):
    """Ctrl-C during `fit`: where training stands, as one line the CLI prints."""

    def __init__(self, step: int, checkpoint: Path | None, is_main: bool = True):
        # is_main: under torchrun every rank raises this; rank 0 alone should say so.
        self.step, self.checkpoint, self.is_main = step, checkpoint, is_main
        where = (f"last checkpoint {checkpoint.name}; continue with --resume" if checkpoint
                 else "no checkpoint written yet, so a new run starts from the beginning")
        super().__init__(f"interrupted at step {step}; {where}")


class Trainer:
    """Trains `model` on `train_data` (anything with `len` and `batch(indices, keys)`)."""

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        train_data: Any,
        config: TrainConfig,
        val_data: Any = None,
        tokenizer: Any = None,
        dist: DistInfo | None = None,
        console: Any = None,
    ):
        t = config.training
        self.config, self.objective, self.tokenizer = config, objective, tokenizer
        self.train_data, self.val_data = train_data, val_data
        self.dist = dist or DistInfo(device=torch.device(
            "cuda" if t.device == "auto" and torch.cuda.is_available() else
            ("cpu" if t.device == "auto" else t.device)))
        self.device = self.dist.device
        if t.threads:
            torch.set_num_threads(t.threads)
        self.precision = resolve_precision(t.precision, self.device,
                                           console if self.dist.is_main else None)
        self.out_dir = Path(t.out_dir)
        self.raw_model = model.to(self.device)
        if config.model.gradient_checkpointing:
            self.raw_model.set_gradient_checkpointing(True)
        self.model = wrap_model(self.raw_model, self.dist, t.distributed)
        if config.model.compile:
            self.model = torch.compile(self.model)
        o = config.optimizer
        self.optimizer = build_optimizer(self.raw_model, o.name, o.lr, o.weight_decay,
                                         tuple(o.betas), o.eps, o.momentum)
        self.scheduler = WarmupCosine(self.optimizer, config.schedule.warmup_steps, t.max_steps,
                                      config.schedule.min_lr_ratio)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.sampler = ResumableSampler(len(train_data), seed=t.seed)
        self.max_steps = t.max_steps
        self.step, self.tokens_seen, self.elapsed_before = 0, 0, 0.0
        self.log = MetricsLog(self.out_dir / "metrics.jsonl", enabled=self.dist.is_main)
        self.console = console
        self.last_val: dict[str, float] = {}
        self.resumed_from: Path | None = None

    # ------------------------------------------------------------------ one optimizer step
    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AMP_DTYPES[self.precision])

    def draw_micro_batches(self) -> list[dict[str, torch.Tensor]]:
        """This rank's micro-batches for the next step, cut from one global draw.

        Micro-batch a of rank r holds global slot a * world + r, so N ranks with accumulation
        k see exactly the examples one process sees with accumulation N * k.
        """
        t, world, rank = self.config.training, self.dist.world_size, self.dist.rank
        n = t.micro_batch_size
        first = self.sampler.consumed
        indices = self.sampler.take(n * t.grad_accum * world)
        batches = []
        for a in range(t.grad_accum):
            lo = (a * world + rank) * n
            keys = range(first + lo, first + lo + n)
            batch = self.train_data.batch(indices[lo:lo + n], list(keys))
            batches.append({k: v.to(self.device, non_blocking=True) for k, v in batch.items()})
        return batches

    def forward_backward(self, micro_batches: Sequence[dict[str, torch.Tensor]]) -> dict:
        """Accumulate gradients of the whole step's mean loss; returns its value per term.

        Each term is divided by its target count over all micro-batches and ranks, so the
        gradient equals that of one big batch even when micro-batches hold different numbers
        of targets (masked LM, padding).
        """
        counts: dict[str, int] = {}
        for b in micro_batches:
            for k, v in self.objective.counts(b).items():
                counts[k] = counts.get(k, 0) + v
        names = sorted(counts)
        totals = all_reduce_sum(torch.tensor([float(counts[k]) for k in names],
                                             device=self.device), self.dist)
        total = {k: max(1.0, float(v)) for k, v in zip(names, totals.tolist(), strict=True)}
        sums = torch.zeros(len(names), device=self.device)
        self.model.train()
        for i, batch in enumerate(micro_batches):
            last = i == len(micro_batches) - 1
            with self._sync(last):
                with self.autocast():
                    terms = self.objective(self.model, batch)
                # DDP averages gradients over ranks; scaling by world makes that a global sum.
                loss = sum(terms[k][0] / total[k] for k in names if is_loss(k))
                loss = loss * self.dist.world_size
                self.scaler.scale(loss).backward()
            sums += torch.stack([terms[k][0].detach().float() for k in names])
        sums = all_reduce_sum(sums, self.dist)
        return {k: float(s) / total[k] for k, s in zip(names, sums.tolist(), strict=True)}

    def _sync(self, last: bool):
        """Skip DDP's gradient all-reduce on all but the last micro-batch of a step."""
        if not last and hasattr(self.model, "no_sync"):
            return self.model.no_sync()
        if hasattr(self.raw_model, "set_requires_gradient_sync"):  # FSDP2
            self.raw_model.set_requires_gradient_sync(last)
        return contextlib.nullcontext()

    def train_step(self) -> dict[str, float]:
        micro = self.draw_micro_batches()
        terms = self.forward_backward(micro)
        clip = self.config.optimizer.grad_clip
        self.scaler.unscale_(self.optimizer)
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip else math.inf)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        tokens = sum(self.objective.input_tokens(b) for b in micro) * self.dist.world_size
        self.tokens_seen += tokens
        return {"loss": sum(v for k, v in terms.items() if is_loss(k)),
                **{f"loss_{k}" if is_loss(k) else k: v for k, v in terms.items()},
                "grad_norm": float(norm), "tokens": tokens}

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Loss and perplexity on a fixed, evenly spaced subset of the validation data."""
        if self.val_data is None:
            return {}
        t = self.config.training
        n = min(len(self.val_data), t.eval_batches * t.micro_batch_size)
        picks = [round(i * len(self.val_data) / n) for i in range(n)]
        mine = picks[self.dist.rank::self.dist.world_size]
        self.model.eval()
        sums: dict[str, torch.Tensor] = {}
        for lo in range(0, len(mine), t.micro_batch_size):
            idx = mine[lo:lo + t.micro_batch_size]
            # Keys fixed per example: masked-LM validation uses the same masks every time.
            batch = {k: v.to(self.device) for k, v in self.val_data.batch(idx, idx).items()}
            with self.autocast():
                terms = self.objective(self.raw_model if self.dist.enabled else self.model, batch)
            for k, (s, c) in terms.items():
                acc = sums.setdefault(k, torch.zeros(2, device=self.device))
                acc += torch.stack([s.float(), c.float()])
        names = sorted(sums)
        if self.dist.enabled:
            # A rank can draw no validation batch at all; it must still join the same
            # all_reduce as the others, so agree on the term names first.
            every: list[Any] = [None] * self.dist.world_size
            torch.distributed.all_gather_object(every, names)
            names = sorted(set().union(*every))
        if not names:
            return {}
        zero = torch.zeros(2, device=self.device)
        totals = all_reduce_sum(torch.stack([sums.get(k, zero) for k in names]), self.dist)
        out = {f"val_loss_{k}" if is_loss(k) else f"val_{k}": float(v[0] / v[1].clamp(min=1))
               for k, v in zip(names, totals, strict=True)}
        out["val_loss"] = sum(v for k, v in out.items() if k.startswith("val_loss_"))
        out["val_ppl"] = math.exp(min(out.get("val_loss_lm", out["val_loss"]), 50.0))
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        rng = ckpt.rng_state()
        if self.dist.enabled:  # every rank's own streams (dropout differs per rank)
            gathered: list[Any] = [None] * self.dist.world_size
            torch.distributed.all_gather_object(gathered, rng)
            rng = {"per_rank": gathered}
        return {
            "step": self.step, "tokens_seen": self.tokens_seen,
            "elapsed": self._spent(),
            "optimizer": self._optimizer_state(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "sampler": self.sampler.state_dict(),
            "rng": rng, "max_steps": self.max_steps, "world_size": self.dist.world_size,
            "config": self.config.model_dump(mode="json"),
        }

    def _optimizer_state(self) -> dict[str, Any]:
        if self.config.training.distributed == "fsdp" and self.dist.enabled:
            # Each rank's optimizer holds only its shard; keep every rank's shard, gathered to
            # rank 0 (a resume must use the same number of processes, which is checked).
            shards: list[Any] = [None] * self.dist.world_size
            local = {"state": {k: {n: (t.to_local() if hasattr(t, "to_local") else t).cpu()
                                   for n, t in v.items()}
                               for k, v in self.optimizer.state_dict()["state"].items()},
                     "param_groups": self.optimizer.state_dict()["param_groups"]}
            torch.distributed.all_gather_object(shards, local)
            return {"per_rank": shards}
        return self.optimizer.state_dict()

    def _full_model_state(self) -> dict[str, torch.Tensor] | None:
        if self.config.training.distributed == "fsdp" and self.dist.enabled:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
            )

            return get_model_state_dict(self.raw_model, options=StateDictOptions(
                full_state_dict=True, cpu_offload=True))
        return None

    def _save_model_to(self, folder: Path, full_state: dict | None = None) -> None:
        model = self.raw_model
        if full_state is not None:  # FSDP: rebuild an unsharded copy on the CPU to save
            # fully_shard swaps in a generated subclass; build the plain lmstack class instead.
            cls = next(c for c in type(model).__mro__ if c.__module__.startswith("lmstack."))
            model = cls(model.config)
            model.load_state_dict(full_state, strict=False)
            model.tie_weights()
        model.save_pretrained(folder)

    def save_checkpoint(self) -> Path | None:
        state = self.state_dict()  # collective calls: every rank takes part
        full = self._full_model_state()
        path = None
        if self.dist.is_main:
            summary = {"tokens_seen": self.tokens_seen, **self.last_val}
            path = ckpt.save_checkpoint(self.out_dir / "checkpoints", self.step,
                                        lambda f: self._save_model_to(f, full), state,
                                        self.tokenizer, self.config.training.keep_last, summary)
        barrier(self.dist)
        return path

    def resume(self, folder: str | Path | None = None) -> bool:
        """Load model, optimizer, schedule, sampler and RNG state; False if nothing to resume.

        Without `folder`, the newest checkpoint under out_dir; if its files are damaged, the
        one before (saying so), since a crash or a full disk can spoil the last save.
        """
        root = self.out_dir / "checkpoints"
        ckpt.clean_temporaries(root) if self.dist.is_main else None
        candidates = [Path(folder)] if folder else ckpt.list_checkpoints(root)[::-1]
        if not candidates:
            return False
        damaged: list[ckpt.DamagedCheckpoint] = []
        for candidate in candidates:
            try:
                self._resume_from(candidate)
            except ckpt.DamagedCheckpoint as e:
                if folder:
                    raise
                damaged.append(e)
                continue
            if damaged:
                self._warn(f"{len(damaged)} newer checkpoint(s) damaged ({damaged[0]}); "
                           f"resumed from the previous complete one, {candidate.name}")
            self.resumed_from = candidate
            return True
        raise damaged[0]

    def _resume_from(self, folder: Path) -> None:
        from lmstack.models.hub import ModelLoadError, read_weights_for

        state = ckpt.load_state(folder)
        if state["world_size"] != self.dist.world_size:
            raise ValueError(f"{folder} was written by {state['world_size']} processes, this run "
                             f"has {self.dist.world_size}; exact resume needs the same number")
        ckpt.check_same_model(folder, state, self.config.model.model_dump(mode="json"))
        try:  # the hub's loading: key names, GPT-2's transposes and shapes checked as for any folder
            weights = read_weights_for(self.raw_model, folder)
        except ModelLoadError as e:
            raise ckpt.DamagedCheckpoint(str(e)) from None
        if self.config.training.distributed == "fsdp" and self.dist.enabled:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True, strict=False)
            set_model_state_dict(self.raw_model, weights, options=opts)
            self._load_local_optimizer_shard(state["optimizer"]["per_rank"][self.dist.rank])
        else:
            self.raw_model.load_state_dict(weights, strict=False)
            self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["sampler"])
        self.step, self.tokens_seen = state["step"], state["tokens_seen"]
        self.elapsed_before = state.get("elapsed", 0.0)
        rng = state["rng"]
        ckpt.set_rng_state(rng["per_rank"][self.dist.rank] if "per_rank" in rng else rng)
        self.log.truncate_after(self.step)

    def _warn(self, text: str) -> None:
        if not self.dist.is_main:
            return
        if self.console is not None:
            self.console.print(f"[yellow]warning:[/] {text}", highlight=False)
        else:
            warnings.warn(text, stacklevel=3)

    def _load_local_optimizer_shard(self, shard: dict[str, Any]) -> None:
        """Put a rank's saved optimizer shard back, re-wrapping tensors like its parameters."""
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        state = {}
        for k, v in shard["state"].items():
            p = params[int(k)]
            state[k] = {n: (type(p.data).from_local(t.to(p.device), p.device_mesh, p.placements)
                            if hasattr(p.data, "device_mesh") and t.dim() else t)
                        for n, t in v.items()}
        self.optimizer.load_state_dict({"state": state, "param_groups": shard["param_groups"]})

    # ------------------------------------------------------------------ the loop
    def _elapsed(self) -> float:
        return time.perf_counter() - self._t0 if hasattr(self, "_t0") else 0.0

    def set_max_steps(self, n: int) -> None:
        """Fix the run length (and so the cosine's end), e.g. once a time budget is measured."""
        self.max_steps = self.scheduler.total = n

    def fit(self) -> dict[str, Any]:
        """Train until max_steps (or max_minutes, counting time trained before a resume);
        validate, log and checkpoint on schedule. Ctrl-C raises TrainingInterrupted."""
        t = self.config.training
        self._t0 = time.perf_counter()
        budget = t.max_minutes * 60 if t.max_minutes else math.inf
        try:
            self._loop(budget)
        except KeyboardInterrupt:
            self._plot()  # the curve of what was trained is worth keeping
            raise TrainingInterrupted(self.step, ckpt.latest_checkpoint(
                self.out_dir / "checkpoints"), self.dist.is_main) from None
        self._plot()
        return {"step": self.step, "tokens_seen": self.tokens_seen,
                "elapsed": self._spent(), **self.last_val}

    def _spent(self) -> float:
        return self.elapsed_before + self._elapsed()

    def _plot(self) -> None:
        if self.dist.is_main and self.log.path.is_file():
            plot_loss_curve(self.log.path, self.out_dir / "loss.png")

    def _loop(self, budget: float) -> None:
        t = self.config.training
        window_tokens, window_t0 = 0, time.perf_counter()
        progress = Progress(self.dist.is_main and t.progress, self.max_steps, self.step)
        if self._spent() >= budget:  # resumed after the time budget was already used up
            return
        with progress:
            while self.step < self.max_steps:
                stats = self.train_step()
                window_tokens += stats["tokens"]
                done = self.step >= self.max_steps or self._spent() >= budget
                if self.step % t.log_every == 0 or done:
                    now = time.perf_counter()
                    tok_s = window_tokens / max(now - window_t0, 1e-9)
                    window_tokens, window_t0 = 0, now
                    self.log.write({"step": self.step, "loss": stats["loss"],
                                    **{k: v for k, v in stats.items()
                                       if k.startswith(("loss_", METRIC_PREFIX))},
                                    "lr": self.scheduler.get_last_lr()[0],
                                    "grad_norm": stats["grad_norm"], "tokens": self.tokens_seen,
                                    "tok_per_s": tok_s, "elapsed": self._elapsed()})
                    progress.update(self.step, stats["loss"], tok_s)
                if self.step % t.eval_every == 0 or done:
                    self.last_val = self.evaluate()
                    if self.last_val:
                        self.log.write({"step": self.step, **self.last_val})
                        progress.note(f"step {self.step}: val loss {self.last_val['val_loss']:.4f}")
                if self.step % t.save_every == 0 or done:
                    self.save_checkpoint()
                if done:
                    break
