"""Demo stage `quant`: SmolLM2 quantized to int8 and int4, the speed / size / perplexity trade-off
measured on this machine, then a short chat with the fastest.

Text for perplexity: the standard library's docstrings (lmstack.demo.corpus), so the stage
needs nothing but the installed packages.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from lmstack.demo.registry import Stage
from lmstack.demo.run import fence
from lmstack.demo.stage_real_model import INSTALL, ask

DEFAULTS = {"decode_tokens": 24, "eval_tokens": 513, "max_tokens": 48, "model": None}
QUESTIONS = ["What is the capital of France?", "Name three colours of the rainbow."]


def decode_speed(model, tokenizer, tokens: int) -> float:
    """Greedy tokens/s at batch 1 through the engine (the prompt's prefill not counted)."""
    from lmstack.engine import Engine
    from lmstack.engine.params import SamplingParams

    engine = Engine(model, tokenizer, max_num_seqs=1)
    engine.add_request("Once upon a time", SamplingParams(max_tokens=tokens + 1, temperature=0,
                                                          ignore_eos=True))
    engine.step()  # prefill and the first token
    start, n = time.perf_counter(), 0
    while engine.has_unfinished():
        n += len(engine.step())
    return n / (time.perf_counter() - start)


def stage_quant(run: Any) -> None:
    import torch

    import lmstack
    from lmstack.demo.corpus import stdlib_corpus
    from lmstack.engine import Engine, EngineChatModel
    from lmstack.models.default import find_packaged_model
    from lmstack.models.hub import ModelLoadError
    from lmstack.quant import model_bytes, quantize_model
    from lmstack.quant.kernels import kernel_name
    from lmstack.quant.quality import compare_to_reference

    opts = run.settings("quant", DEFAULTS)
    if opts["model"] is not None:
        model, tokenizer, _ = opts["model"]
    else:
        try:
            model, tokenizer = lmstack.load(find_packaged_model("smollm2"))
        except ModelLoadError:
            run.section("Quantization", f"Skipped: SmolLM2 is not installed (`{INSTALL}`).")
            return
    with torch.no_grad():
        variants = {"fp32": model,
                    "int8": quantize_model(copy.deepcopy(model), "int8"),
                    "int4 (g32)": quantize_model(copy.deepcopy(model), "int4", 32)}
    text = stdlib_corpus(max_chars=20_000)
    ids = torch.tensor(tokenizer.encode(text, add_special_tokens=False))[:opts["eval_tokens"]]
    quality = compare_to_reference(model, {k: v for k, v in variants.items() if k != "fp32"},
                                   ids, ctx=256)
    rows, speeds = [], {}
    for name, m in variants.items():
        speeds[name] = decode_speed(m, tokenizer, opts["decode_tokens"])
        q = quality[name]
        rows.append(f"| {name} | {model_bytes(m) / 2**20:.0f} | {speeds[name]:.1f} | "
                    f"{q['ppl']:.2f} | {q['kld']:.4f} | {100 * q['top1']:.1f}% |")
        run.console.print(rows[-1])
    fastest = max(speeds, key=speeds.get)
    chat = EngineChatModel(Engine(variants[fastest], tokenizer, max_num_seqs=1),
                           name=f"smollm2-{fastest}")
    body = []
    for question in QUESTIONS:
        answer = ask(chat, question, opts["max_tokens"])["answer"]
        run.console.print(f"Q: {question}\nA: {answer.strip()[:200]}")
        body += [f"**Q:** {question}", "", fence(answer), ""]
    run.section("Quantization", "\n".join([
        (f"SmolLM2's Linear layers (the output head included; embeddings and norms stay "
         f"float32) quantized by `lmstack.quant.quantize_model`: int8 with one scale per output "
         f"channel, int4 in groups of 32 with a scale and a minimum each. Products run on the "
         f"`{kernel_name()}` kernels. Decode tokens/s at batch 1 on this machine "
         f"({torch.get_num_threads()} threads); perplexity, mean KL divergence from fp32 and "
         f"top-1 agreement over {quality['fp32']['tokens']} tokens of standard-library "
         "docstrings (llama.cpp's method: the second half of each 256-token window)."), "",
        "| weights | MiB | decode tok/s | perplexity | KLD | top-1 |",
        "|---|---|---|---|---|---|", *rows, "",
        f"The fastest, {fastest}, answers (greedy, at most {opts['max_tokens']} tokens):", "",
        *body,
        ("Write a quantized folder with `lmstack quant smollm2 --scheme int8 --out DIR`, chat "
         "with it by `lmstack chat DIR`, and see each scheme's cost with `lmstack quant eval "
         "smollm2 --text FILE`."),
    ]))


STAGE = Stage("quant", 55, stage_quant,
              "SmolLM2 in int8 and int4: speed, size, perplexity; a chat with the fastest")
