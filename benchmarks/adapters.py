"""Parameter-efficient fine-tuning: lmstack's adapters against Hugging Face PEFT, side by side.

In one process, in turns, on one random Llama (so load from other jobs hits both alike):
(1) a training step (forward + backward) per method, lmstack vs PEFT on the same adapter
weights; (2) a batch whose rows use four different LoRA adapters: lmstack's gathered pass
(punica-style), lmstack split into one pass per adapter, and PEFT's `adapter_names`;
(3) the engine decoding requests that each name an adapter, against the same requests on the
plain base. Medians of several runs; ratios are what to read on a shared machine.
Run: `.venv/bin/python benchmarks/adapters.py` (a few minutes on 2 cores; --quick: ~1). Not
named peft.py: the script's folder comes first on sys.path, so it would shadow the package.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see benchmarks/engine.py

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import peft
import torch
import transformers
from forward import machine

from lmstack import load
from lmstack.adapt import load_adapter, load_adapters
from lmstack.engine import Engine, SamplingParams
from lmstack.fileio import atomic_write_text

CONFIG = {"vocab_size": 4096, "hidden_size": 256, "intermediate_size": 688,
          "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 4,
          "max_position_embeddings": 512}
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
METHODS = {
    "lora": lambda: peft.LoraConfig(r=8, lora_alpha=16, target_modules=ALL_LINEAR,
                                    task_type="CAUSAL_LM"),
    "dora": lambda: peft.LoraConfig(r=8, lora_alpha=16, target_modules=ALL_LINEAR,
                                    use_dora=True, task_type="CAUSAL_LM"),
    "ia3": lambda: peft.IA3Config(task_type="CAUSAL_LM"),
    "prompt": lambda: peft.PromptTuningConfig(num_virtual_tokens=16, task_type="CAUSAL_LM"),
    "prefix": lambda: peft.PrefixTuningConfig(num_virtual_tokens=16, task_type="CAUSAL_LM"),
}
RESULTS = Path(__file__).parent / "results" / "peft.json"


def race(contestants: dict, runs: int) -> dict[str, float]:
    """Median seconds per contestant, run in turns (one call each per round), so a burst of
    load from other jobs lands on all of them rather than on whoever ran then."""
    for fn in contestants.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(runs):
        for name, fn in contestants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def peft_adapter(folder: Path, config, out: Path, seed: int) -> peft.PeftModel:
    """PEFT's adapter on a fresh base, every adapter weight nudged so none is a no-op."""
    torch.manual_seed(seed)
    model = peft.get_peft_model(transformers.AutoModelForCausalLM.from_pretrained(folder),
                                config)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(out)
    return model


def train_step(model, ids: torch.Tensor, cut: int) -> None:
    out = model(ids)
    logits = getattr(out, "logits", out)[:, cut:]  # PEFT's prompt tuning returns P more
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()


def methods(folder: Path, work: Path, runs: int) -> dict:
    ids = torch.randint(0, CONFIG["vocab_size"], (4, 128), generator=torch.Generator().manual_seed(0))
    out = {}
    for name, config in METHODS.items():
        theirs = peft_adapter(folder, config(), work / name, seed=1).train()
        ours = load_adapter(load(folder)[0], work / name).train()
        cut = 16 if name == "prompt" else 0
        t = race({"peft": lambda m=theirs, c=cut: train_step(m, ids, c),
                  "lmstack": lambda m=ours: train_step(m, ids, 0)}, runs)
        out[name] = {"lmstack_s": t["lmstack"], "peft_s": t["peft"],
                     "speedup": t["peft"] / t["lmstack"]}
    return out


def mixed_batch(folder: Path, work: Path, runs: int) -> dict:
    names = ["a", "b", "c", "d"]
    for i, n in enumerate(names):
        peft_adapter(folder, METHODS["lora"](), work / n, seed=10 + i)
    rows = names * 2  # 8 rows, adapters interleaved as requests arrive
    ids = torch.randint(0, CONFIG["vocab_size"], (8, 64), generator=torch.Generator().manual_seed(1))
    theirs = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(folder), work / "a", adapter_name="a")
    for n in names[1:]:
        theirs.load_adapter(work / n, adapter_name=n)
    ours = load_adapters(load(folder)[0].eval(), [(n, work / n) for n in names])
    theirs.eval()

    def gathered():
        ours.select_rows([names.index(n) for n in rows])
        ours.model(ids)

    def split():
        for n in names:
            ours.set_adapter(n)
            ours.model(ids[[j for j, r in enumerate(rows) if r == n]])

    def base():
        with ours.disable_adapters():
            ours.model(ids)

    with torch.inference_mode():
        t = race({"gathered": gathered, "split": split, "base": base,
                  "peft": lambda: theirs(ids, adapter_names=rows)}, runs)
    return {"rows": len(rows), "tokens_per_row": ids.shape[1], "adapters": len(names),
            "lmstack_gathered_s": t["gathered"], "lmstack_one_pass_per_adapter_s": t["split"],
            "peft_adapter_names_s": t["peft"], "base_model_s": t["base"],
            "gathered_vs_peft": t["peft"] / t["gathered"],
            "gathered_vs_split": t["split"] / t["gathered"],
            "overhead_vs_base": t["gathered"] / t["base"]}


def engine_decode(folder: Path, work: Path, runs: int) -> dict:
    names = ["a", "b", "c", "d"]
    prompts = [[(7 * i + j) % CONFIG["vocab_size"] for j in range(16)] for i in range(16)]

    def engine(adapters: bool) -> tuple[Engine, list[SamplingParams]]:
        model = load(folder)[0]
        multi = load_adapters(model, [(n, work / n) for n in names]) if adapters else None
        params = [SamplingParams(max_tokens=32, temperature=0, ignore_eos=True,
                                 adapter=names[i % 4] if adapters else None)
                  for i in range(len(prompts))]
        return Engine(model, None, max_num_seqs=16, column_major=True, adapters=multi), params

    (base, base_params), (mixed, mixed_params) = engine(False), engine(True)
    t = race({"base": lambda: base.generate(prompts, base_params),
              "mixed": lambda: mixed.generate(prompts, mixed_params)}, runs)
    tokens = len(prompts) * 32
    return {"requests": len(prompts), "new_tokens": 32, "base_tok_s": tokens / t["base"],
            "four_adapters_mixed_tok_s": tokens / t["mixed"],
            "mixed_adapter_passes": mixed.stats["mixed_adapter_passes"],
            "fraction_of_base": t["base"] / t["mixed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    runs = 3 if args.quick else 7
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder, work = Path(tmp) / "base", Path(tmp)
        transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG)).save_pretrained(folder)
        info = machine()
        result = {"machine": info, "model": CONFIG, "runs": runs,
                  "train_step_4x128": methods(folder, work, runs),
                  "mixed_lora_batch": mixed_batch(folder, work, runs),
                  "engine_mixed_lora": engine_decode(folder, work, max(2, runs // 3))}
    result["machine"]["load_average_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    for name, r in result["train_step_4x128"].items():
        print(f"train step {name:7s} lmstack {r['lmstack_s'] * 1e3:7.1f} ms  "
              f"PEFT {r['peft_s'] * 1e3:7.1f} ms  {r['speedup']:.2f}x")
    m, e = result["mixed_lora_batch"], result["engine_mixed_lora"]
    print(f"mixed batch (8 rows, 4 adapters): gathered {m['lmstack_gathered_s'] * 1e3:.1f} ms, "
          f"one pass per adapter {m['lmstack_one_pass_per_adapter_s'] * 1e3:.1f} ms, PEFT "
          f"adapter_names {m['peft_adapter_names_s'] * 1e3:.1f} ms, base {m['base_model_s'] * 1e3:.1f} ms")
    print(f"engine: base {e['base_tok_s']:.0f} tok/s, four adapters mixed "
          f"{e['four_adapters_mixed_tok_s']:.0f} tok/s ({e['fraction_of_base']:.2f} of base)")


if __name__ == "__main__":
    main()
