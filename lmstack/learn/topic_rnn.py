"""`lmstack learn rnn`: character-level language models from RNN, LSTM, GRU and a Transformer,
at equal parameters and equal wall-clock, and why gates keep gradients alive.

Follows Karpathy's char-rnn ("The Unreasonable Effectiveness of RNNs", 2015) on tinyshakespeare
and Bengio et al. 1994 / Pascanu et al. 2013 on vanishing gradients through time.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic

# ../shared beside the checkout: the project's data folder; a fresh clone may not have it.
REPO = Path(__file__).resolve().parents[2]
SHAKESPEARE = REPO.parent / "shared" / "data" / "pretrain" / "tinyshakespeare.txt"
KINDS = ("rnn", "lstm", "gru", "transformer")


def load_corpus(max_chars: int) -> tuple[str, str]:
    """(text, where it came from): tinyshakespeare from ../shared when this checkout has it,
    else the Python reference's topic texts, which ship with every Python."""
    if SHAKESPEARE.is_file():
        return SHAKESPEARE.read_text(encoding="utf-8")[:max_chars], "tinyshakespeare"
    from pydoc_data import topics

    text = "\n\n".join(topics.topics[k] for k in sorted(topics.topics))
    return text[:max_chars], "pydoc_data.topics (tinyshakespeare not found)"


def build(kind: str, vocab: int, width: int, seq_len: int):
    """A char LM of the given width: embedding -> recurrent layer -> vocabulary, or a small
    lmstack Llama (2 layers, rotary positions) for the Transformer."""
    import torch
    from torch import nn

    if kind == "transformer":
        from lmstack.models.llama import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(vocab_size=vocab, hidden_size=width, intermediate_size=2 * width,
                          num_hidden_layers=2, num_attention_heads=4,
                          max_position_embeddings=seq_len, tie_word_embeddings=True)
        return LlamaForCausalLM(cfg)

    from lmstack.nn.recurrent import Recurrent

    class CharRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, width)
            self.rnn = Recurrent(kind, width, width)
            self.head = nn.Linear(width, vocab)

        def forward(self, ids: torch.Tensor, embedded: torch.Tensor | None = None):
            x = self.embed(ids) if embedded is None else embedded  # [B, T, width]
            return self.head(self.rnn(x)[0])  # [B, T, vocab]

    return CharRNN()


def count(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def width_for(kind: str, vocab: int, target: int, seq_len: int) -> int:
    """The width whose parameter count comes closest to `target`, so the models differ in
    architecture, not size. For the Transformer a multiple of 8: each of its 4 heads needs an
    even rotary dimension. Bisection works because the count grows with the width."""
    unit = 8 if kind == "transformer" else 2
    lo, hi = 1, 512 // unit
    while lo < hi:
        mid = (lo + hi) // 2
        if count(build(kind, vocab, unit * mid, seq_len)) < target:
            lo = mid + 1
        else:
            hi = mid
    options = [unit * w for w in (lo - 1, lo) if w >= 1]
    return min(options, key=lambda w: abs(count(build(kind, vocab, w, seq_len)) - target))


TINY_STEPS = 30  # a fixed count, so the tiny run is the same on a busy or a quiet machine


def train_for(model, data, seconds: float, batch: int, seq_len: int, lr: float, seed: int,
              max_steps: int | None = None) -> dict[str, Any]:
    """AdamW on random windows until the clock runs out, or for exactly `max_steps` (the tiny
    run: its result must not depend on how fast the machine is); returns steps and tokens/s."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    model.train()
    steps, t0 = 0, time.perf_counter()
    while (steps < max_steps if max_steps is not None
           else time.perf_counter() - t0 < seconds):
        start = torch.randint(0, len(data) - seq_len - 1, (batch,), generator=g)
        win = torch.stack([data[s:s + seq_len + 1] for s in start.tolist()])
        loss = F.cross_entropy(model(win[:, :-1]).flatten(0, 1), win[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps += 1
    elapsed = time.perf_counter() - t0
    return {"steps": steps, "tok_per_s": steps * batch * seq_len / elapsed}


def val_loss(model, data, seq_len: int, windows: int) -> float:
    """Mean cross-entropy per character (nats) over evenly spaced validation windows."""
    import torch
    import torch.nn.functional as F

    model.eval()
    starts = torch.linspace(0, len(data) - seq_len - 2, windows).long().tolist()
    win = torch.stack([data[s:s + seq_len + 1] for s in starts])
    with torch.no_grad():
        return F.cross_entropy(model(win[:, :-1]).flatten(0, 1), win[:, 1:].flatten()).item()


def gradient_by_step(model, kind: str, window) -> list[float]:
    """|d loss(last character) / d input embedding at step t| for every t, batch-averaged.

    How much the last prediction can still learn from a character t steps back: through a
    vanilla RNN this shrinks geometrically with distance; gates (and attention) keep it up.
    """
    import torch.nn.functional as F

    model.eval()
    ids = window[:, :-1]
    emb = (model.model.embed_tokens if kind == "transformer" else model.embed)(ids)
    emb = emb.detach().requires_grad_()
    if kind == "transformer":
        logits = model.lm_head(model.model(ids, inputs_embeds=emb))
    else:
        logits = model(ids, embedded=emb)
    F.cross_entropy(logits[:, -1], window[:, -1]).backward()
    return emb.grad.norm(dim=-1).mean(0).tolist()  # [T]


def run(out: Path, tiny: bool) -> dict[str, Any]:
    import torch

    torch.manual_seed(0)
    text, source = load_corpus(200_000 if tiny else 1_200_000)
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text], dtype=torch.long)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    seq_len, batch = (32, 16) if tiny else (64, 32)
    target = 8_000 if tiny else 60_000
    seconds = 1.5 if tiny else 22.0  # the same wall-clock for every model
    rows, grads = [], {}
    for i, kind in enumerate(KINDS):
        torch.manual_seed(i)
        width = width_for(kind, len(chars), target, seq_len)
        model = build(kind, len(chars), width, seq_len)
        before = val_loss(model, val, seq_len, 32 if tiny else 256)
        stats = train_for(model, train, seconds, batch, seq_len, 3e-3, seed=i,
                          max_steps=TINY_STEPS if tiny else None)
        after = val_loss(model, val, seq_len, 32 if tiny else 256)
        probe = torch.stack([data[s:s + seq_len + 1] for s in range(0, 16 * 997, 997)])
        grads[kind] = gradient_by_step(model, kind, probe)
        rows.append({"model": kind, "width": width, "parameters": count(model),
                     "val_loss_start": before, "val_loss": after, **stats})
    _plot(out / "grad_norm_by_step.png", grads)
    _write_report(out, rows, grads, source, len(text), seconds, seq_len, len(chars))
    return {"corpus": source,
            **{r["model"]: {"val_loss_start": round(r["val_loss_start"], 3),
                            "val_loss": round(r["val_loss"], 3),
                            "tok_per_s": round(r["tok_per_s"]), "parameters": r["parameters"],
                            "grad_far_over_near": float(f"{_reach(grads[r['model']]):.2e}")}
               for r in rows}}


def _reach(g: list[float]) -> float:
    """Gradient at the first input over the one just before the last: how far the loss reaches."""
    return g[0] / max(g[-2], 1e-30)


def _plot(path: Path, grads: dict[str, list[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for kind, g in grads.items():
        back = list(range(len(g) - 1, -1, -1))  # steps between input and the predicted char
        ax.semilogy(back, [max(v, 1e-30) for v in g], label=kind)
    ax.set_xlabel("steps back from the predicted character")
    ax.set_ylabel("gradient norm at that input (log)")
    ax.set_title("How far back can the loss reach?")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_report(out, rows, grads, source, n_chars, seconds, seq_len, vocab) -> None:
    lines = [
        "# RNN, LSTM, GRU and a Transformer as character language models", "",
        (f"Corpus: {source}, {n_chars:,} characters (90% train, 10% validation). Each model has "
        f"about the same number of parameters and trains for the same {seconds:.0f} s of wall "
        f"clock (AdamW, lr 3e-3, windows of {seq_len} characters). The recurrent cells are "
        "lmstack's own (`lmstack/nn/recurrent.py`), a Python loop over time steps. Guessing "
        f"uniformly among the {vocab} characters costs ln {vocab} = {math.log(vocab):.2f} nats."),
        "",
        ("| model | width | parameters | steps | tokens/s | val loss/char at start | "
        "val loss/char (nats) |"), "|---|---|---|---|---|---|---|",
        *(f"| {r['model']} | {r['width']} | {r['parameters']:,} | {r['steps']} | "
          f"{r['tok_per_s']:,.0f} | {r['val_loss_start']:.3f} | {r['val_loss']:.3f} |"
          for r in rows), "",
        ("Gradient of the last character's loss with respect to each input, by distance "
        f"(ratio of the gradient {seq_len - 1} steps back to the one 1 step back):"), "",
        *(f"- {k}: {_reach(g):.1e}" for k, g in grads.items()), "",
        "![gradient norm by time step](grad_norm_by_step.png)", "",
    ]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")


TOPIC = Topic("rnn", "RNN vs LSTM vs GRU vs Transformer on characters; vanishing gradients", run)
