"""`lmstack learn t5`: one small T5 learns four tasks told apart only by a text prefix.

T5's text-to-text idea (Raffel et al. 2020): every task is text in, text out, so one model,
one loss and one decoder serve them all. Tasks are generated in code, characters are tokens.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from pathlib import Path
from typing import Any

from lmstack.learn.registry import Topic

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen"]
TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
CN_DIGITS, CN_UNITS = "零一二三四五六七八九", ["", "十", "百", "千"]
MONTHS = [dt.date(2000, m, 1).strftime("%B") for m in range(1, 13)]


def english(n: int) -> str:
    """0..9999 in English words: 1234 -> one thousand two hundred thirty-four."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("-" + ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return ONES[n // 100] + " hundred" + (" " + english(n % 100) if n % 100 else "")
    return english(n // 1000) + " thousand" + (" " + english(n % 1000) if n % 1000 else "")


def chinese(n: int) -> str:
    """0..9999 in Chinese numerals: 1234 -> 一千二百三十四, 1005 -> 一千零五, 12 -> 十二."""
    if n == 0:
        return CN_DIGITS[0]
    out, gap = "", False
    digits = str(n)
    for i, d in enumerate(map(int, digits)):
        if d == 0:
            gap = True  # a run of zeros inside the number is read as one 零
            continue
        out += (CN_DIGITS[0] if gap and out else "") + CN_DIGITS[d] + CN_UNITS[len(digits) - 1 - i]
        gap = False
    return out[1:] if out.startswith("一十") else out  # 10..19 say 十, not 一十


def _date(rng: random.Random) -> tuple[str, str]:
    d = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(365 * 100))
    shown = rng.choice([f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
                        f"{d.day} {MONTHS[d.month - 1]} {d.year}",
                        f"{d.year}/{d.month}/{d.day}", f"{d.day}.{d.month}.{d.year}"])
    return shown, d.isoformat()


def _sort(rng: random.Random) -> tuple[str, str]:
    xs = [rng.randrange(100) for _ in range(rng.randint(3, 7))]
    return " ".join(map(str, xs)), " ".join(map(str, sorted(xs)))


# task -> (prefix, example generator): the prefix is all that tells the model which task
TASKS = {
    "english": ("number to English: ", lambda r: (str(n := r.randrange(10000)), english(n))),
    "chinese": ("数字转中文: ", lambda r: (str(n := r.randrange(10000)), chinese(n))),
    "date": ("date to ISO: ", _date),
    "sort": ("sort: ", _sort),
}


def make_examples(n_train: int, n_test: int, seed: int = 0):
    """(train, test) lists of (task, source text, target text); no test source is trained on."""
    rng = random.Random(seed)
    test, seen = [], set()
    for task, (prefix, gen) in TASKS.items():
        while len([t for t in test if t[0] == task]) < n_test:
            x, y = gen(rng)
            if prefix + x not in seen:
                seen.add(prefix + x)
                test.append((task, prefix + x, y))
    train = []
    while len(train) < n_train:
        task = rng.choice(list(TASKS))
        prefix, gen = TASKS[task]
        x, y = gen(rng)
        if prefix + x not in seen:
            train.append((task, prefix + x, y))
    return train, test


class CharVocab:
    """One id per character; 0 pad (also T5's decoder start), 1 end of text, 2 unknown."""

    def __init__(self, texts):
        self.chars = sorted({c for t in texts for c in t})
        self.ids = {c: i + 3 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 3

    def encode(self, text: str) -> list[int]:
        return [self.ids.get(c, 2) for c in text] + [1]

    def decode(self, ids) -> str:
        out = []
        for i in ids:
            if i == 1:
                break
            if i > 2:
                out.append(self.chars[i - 3])
        return "".join(out)


class Seq2SeqData:
    """What the Trainer draws batches from: `len` and `batch(indices, keys)`."""

    def __init__(self, pairs, vocab: CharVocab):
        self.pairs = [(vocab.encode(x), vocab.encode(y)) for _, x, y in pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, indices, keys=None):
        import torch

        src = [self.pairs[i][0] for i in indices]
        tgt = [self.pairs[i][1] for i in indices]
        ids = torch.zeros(len(src), max(map(len, src)), dtype=torch.long)  # right padded
        labels = torch.full((len(tgt), max(map(len, tgt))), -100, dtype=torch.long)
        for row, (s, t) in enumerate(zip(src, tgt, strict=True)):
            ids[row, :len(s)] = torch.tensor(s)
            labels[row, :len(t)] = torch.tensor(t)
        return {"input_ids": ids, "attention_mask": (ids != 0).long(), "labels": labels}


def exact_match(model, vocab: CharVocab, test, batch_size: int = 64) -> dict[str, Any]:
    """Greedy outputs for every held-out example; per task, the share exactly right."""
    from lmstack.models.t5_generate import generate_seq2seq

    model.eval()
    outputs = []
    data = Seq2SeqData(test, vocab)
    longest = max(len(vocab.encode(y)) for _, _, y in test)
    for lo in range(0, len(test), batch_size):
        b = data.batch(range(lo, min(lo + batch_size, len(test))))
        out = generate_seq2seq(model, b["input_ids"], longest, b["attention_mask"])
        outputs += [vocab.decode(row[1:].tolist()) for row in out]
    pairs = {task: [(o, y) for (t, _, y), o in zip(test, outputs, strict=True) if t == task]
             for task in TASKS}
    # Exact match is all or nothing; the share of characters in place shows partial progress.
    chars = {t: sum(sum(a == b for a, b in zip(o, y, strict=False)) / max(len(o), len(y), 1)
                    for o, y in ps) / len(ps) for t, ps in pairs.items()}
    return {"exact_match": {t: sum(o == y for o, y in ps) / len(ps) for t, ps in pairs.items()},
            "char_match": chars, "outputs": outputs}


def run(out: Path, tiny: bool) -> dict[str, Any]:
    import torch

    from lmstack.models.t5 import T5Config, T5ForConditionalGeneration
    from lmstack.train.config import TrainConfig
    from lmstack.train.objectives import Seq2SeqLM
    from lmstack.train.trainer import Trainer

    torch.manual_seed(0)
    n_train, n_test = (400, 8) if tiny else (40_000, 100)
    train, test = make_examples(n_train, n_test)
    vocab = CharVocab(x + y for _, x, y in train + test)
    size = ({"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_heads": 4} if tiny else
            {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_heads": 4})
    # Tied embeddings with the original T5's output rescaling keep the first logits small,
    # so training starts near log(vocab) instead of far above it.
    config = T5Config(vocab_size=len(vocab), feed_forward_proj="gated-gelu", dropout_rate=0.0,
                      relative_attention_num_buckets=16, relative_attention_max_distance=64,
                      **size)
    model = T5ForConditionalGeneration(config)
    budget = 10 if tiny else 80  # seconds of training: the run is sized by the clock
    cfg = TrainConfig.model_validate({
        "data": {"files": []},  # the examples come from code, not files
        "optimizer": {"lr": 3e-3 if tiny else 5e-3, "weight_decay": 0.01},
        "schedule": {"warmup_steps": 5 if tiny else 30},
        "training": {"out_dir": str(out / "train"), "max_steps": 30 if tiny else 10**6,
                     "max_minutes": budget / 60, "micro_batch_size": 32,
                     "log_every": 5 if tiny else 20, "eval_every": 10**9,
                     "save_every": 10**9, "keep_last": 1, "progress": False, "seed": 0}})
    trainer = Trainer(model, Seq2SeqLM(), Seq2SeqData(train, vocab), cfg)
    t0 = time.perf_counter()
    first = trainer.train_step()["loss"]
    if not tiny:  # time two more steps, then fit the cosine schedule to the budget
        trainer.train_step(), trainer.train_step()
        per_step = (time.perf_counter() - t0) / 3
        trainer.set_max_steps(max(trainer.step + 1, int(budget / per_step)))
    fit = trainer.fit()
    last_loss = json.loads(trainer.log.path.read_text().strip().splitlines()[-1])["loss"]
    scores = exact_match(model, vocab, test)
    agrees = _transformers_agrees(model, out / "model", test[:16], vocab, scores["outputs"][:16])
    attention_map(model, vocab, next(x for x in test if x[0] == "date"),
                  out / "cross_attention.png")
    _write_report(out, test, scores, first, last_loss, fit, model, agrees, tiny)
    return {"exact_match": {t: round(v, 3) for t, v in scores["exact_match"].items()},
            "char_match": {t: round(v, 3) for t, v in scores["char_match"].items()},
            "first_loss": round(first, 4), "final_loss": round(last_loss, 4),
            "steps": fit["step"], "seconds": round(fit["elapsed"], 1),
            "parameters": model.num_parameters(), "transformers_agrees": agrees}


def _transformers_agrees(model, folder: Path, test, vocab, ours) -> str:
    """Save the trained model as an HF folder and let transformers decode the same inputs."""
    try:
        import transformers
    except ImportError:
        return "transformers not installed"
    model.save_pretrained(folder)
    ref = transformers.T5ForConditionalGeneration.from_pretrained(folder).eval()
    b = Seq2SeqData(test, vocab).batch(range(len(test)))
    longest = max(len(vocab.encode(y)) for _, _, y in test)
    out = ref.generate(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                       max_new_tokens=longest, do_sample=False, num_beams=1,
                       decoder_start_token_id=0, eos_token_id=1, pad_token_id=0)
    same = sum(vocab.decode(r[1:].tolist()) == o for r, o in zip(out, ours, strict=True))
    return f"{same}/{len(test)}"


def attention_map(model, vocab: CharVocab, example, path: Path) -> None:
    """Plot where the last decoder layer's cross-attention looks (mean over heads) while the
    model writes its own answer to `example`: one row per output character."""
    import matplotlib
    import torch

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmstack.models.t5_generate import generate_seq2seq

    b = Seq2SeqData([example], vocab).batch([0])
    out = generate_seq2seq(model, b["input_ids"], len(vocab.encode(example[2])) + 4,
                           b["attention_mask"])
    attn = model.decoder.block[-1].layer[1].EncDecAttention
    seen = {}

    def keep(module, args, kwargs):  # the normed decoder states, the mask bias, encoder k/v
        seen.update(x=args[0], bias=args[1], kv=kwargs["kv"])

    hook = attn.register_forward_pre_hook(keep, with_kwargs=True)
    with torch.no_grad():
        model(b["input_ids"], b["attention_mask"], decoder_input_ids=out[:, :-1])
    hook.remove()
    q = attn.heads(attn.q, seen["x"])  # [1, heads, T_out, d_kv]; T5 leaves out 1/sqrt(d)
    weights = (q @ seen["kv"][0].transpose(-1, -2) + seen["bias"]).softmax(-1)[0].mean(0)
    src = list(example[1]) + ["</s>"]
    tgt = [vocab.decode([i]) or "</s>" for i in out[0, 1:].tolist()]
    fig, ax = plt.subplots(figsize=(0.28 * len(src) + 1.5, 0.28 * len(tgt) + 1.5))
    ax.imshow(weights.detach().numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(src)), src, fontsize=7)
    ax.set_yticks(range(len(tgt)), tgt, fontsize=7)
    ax.set_xlabel("input character")
    ax.set_ylabel("output character")
    ax.set_title("cross-attention, last decoder layer", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _write_report(out, test, scores, first, last, fit, model, agrees, tiny) -> None:
    em = scores["exact_match"]
    lines = [
        "# T5: four tasks, one model, told apart by a prefix", "",
        (f"A {model.num_parameters():,}-parameter T5 (gated-GELU feed-forward as in v1.1, "
        "relative position buckets, tied embeddings) trained with lmstack's Trainer and the "
        f"seq2seq objective for {fit['step']} "
        f"steps ({fit['elapsed']:.0f} s){' — tiny run' if tiny else ''}. Training loss "
        f"{first:.3f} -> {last:.3f}. Characters are tokens."), "",
        "| task | prefix | held-out examples | exact match | characters in place |",
        "|---|---|---|---|---|",
        *(f"| {t} | `{TASKS[t][0].strip()}` | {sum(1 for x in test if x[0] == t)} | "
          f"{em[t]:.0%} | {scores['char_match'][t]:.0%} |" for t in TASKS), "",
        (f"transformers' `generate` on our saved folder gives the same text for {agrees} "
        "held-out inputs."), "", "Samples (input -> ours | expected):", "",
    ]
    for task in TASKS:
        i = next(j for j, x in enumerate(test) if x[0] == task)
        lines.append(f"- `{test[i][1]}` -> `{scores['outputs'][i]}` | `{test[i][2]}`")
    lines += ["", "![training loss](train/loss.png)", "",
              "Where the decoder looks in the input while it writes a date:", "",
              "![cross-attention](cross_attention.png)", ""]
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")


TOPIC = Topic("t5", "T5 text-to-text: one encoder-decoder learns four prefixed tasks", run)
