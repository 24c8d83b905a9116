"""`lmstack demo`'s stages end to end at tiny scale: every stage runs for real (corpus from the
standard library's sources, BPE, a training run on the wall clock, the OpenAI server asked by
the openai client, SmolLM2 answering three questions) and the report says what happened."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from lmstack.demo import run_demo
from lmstack.demo.stage_rag import QUESTIONS as RAG_QUESTIONS
from lmstack.demo.stage_real_model import QUESTIONS, judge
from lmstack.train.metrics import read_metrics

BUDGET_MIN = 0.15  # 9 s of training: enough for the loss to fall well below its start
TINY = {
    "corpus": {"max_chars": 60_000},
    "tokenizer": {"vocab_size": 400},
    "pretrain": {"model": {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 1,
                           "num_attention_heads": 2, "num_key_value_heads": 2,
                           "max_position_embeddings": 64, "tie_word_embeddings": True},
                 "seq_len": 32, "eval_batches": 2, "precision": "fp32", "warmup_steps": 5},
    "clip": {"pairs": 256, "clip_steps": 20, "caption_steps": 20, "batch": 32, "width": 32,
             "layers": 1, "test_images": 40},
}


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory, request):
    pytest.importorskip("openai", reason="the serve stage asks through the openai client")
    out = tmp_path_factory.mktemp("demo")
    try:  # the session's one load of SmolLM2; without the package the stage says so itself
        real = request.getfixturevalue("smollm2")
    except pytest.skip.Exception:
        real = None
    options = {**TINY, "real_model": {"max_tokens": 8, "model": real},
               "finetune": {"model": real, "steps": 2, "r": 2, "alpha": 4, "max_tokens": 4,
                            "replay_tokens": 12, "micro_batch_size": 1},
               "quant": {"model": real, "decode_tokens": 4, "eval_tokens": 257, "max_tokens": 8},
               "rag": {"max_tokens": 8, "model": real, "embedder": "bm25",
                       "questions": RAG_QUESTIONS[:1]},
               "toolcall": {"model": real, "held_out": 2, "recipe": {
                   "steps": 2, "r": 2, "alpha": 4, "train_cases": 4, "micro_batch_size": 1}},
               "diffusion": {"minutes": 0.05, "widths": [16, 16], "per_class": 2, "steps": 4,
                             "classifier_steps": 30}}
    report = run_demo(out, minutes=BUDGET_MIN, console=Console(quiet=True), options=options)
    return out, report.read_text(encoding="utf-8")


def test_report_has_a_section_per_stage(demo_out):
    out, report = demo_out
    titles = re.findall(r"^## (.+)$", report, flags=re.MULTILINE)
    assert titles == ["Corpus", "Tokenizer", "Pretraining", "Serving", "A real model",
                      "Quantization", "Answers with citations (RAG)", "Fine-tuning with LoRA",
                      "SmolLM2 calls tools (LoRA)", "Image and text (CLIP)", "Diffusion: digits from noise", "Timings"]
    assert (out / "loss.png").stat().st_size > 10_000
    assert (out / "model" / "config.json").is_file() and (out / "model" / "tokenizer.json").is_file()


def test_diffusion_drew_a_rated_grid(demo_out):
    out, report = demo_out
    section = report.split("## Diffusion: digits from noise")[1].split("\n## ")[0]
    assert (out / "diffusion_grid.png").stat().st_size > 100
    assert (out / "diffusion" / "config.json").is_file()  # a folder `serve --image-model` takes
    assert "![generated digits](diffusion_grid.png)" in section
    assert re.search(r"\d+% read as the requested digit .* (\d+) of 10 digits present", section)


def test_training_lowered_the_loss_and_used_its_budget(demo_out):
    out, report = demo_out
    records = read_metrics(out / "train" / "metrics.jsonl")
    losses = [r["loss"] for r in records if "loss" in r]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    assert len(vals) >= 3, "validation is a series, not one point"
    assert losses[-1] < losses[0] - 1.0 and vals[-1] < vals[0]
    # Trained on the wall clock: stopped neither at half the budget nor well past it.
    elapsed = max(r["elapsed"] for r in records if "elapsed" in r)
    assert 0.85 * BUDGET_MIN * 60 <= elapsed <= 1.1 * BUDGET_MIN * 60, elapsed
    tokens = max(r["tokens"] for r in records if "tokens" in r)
    rate = float(re.search(r"training throughput \| ([\d,]+) tokens/s", report)[1].replace(",", ""))
    assert rate == pytest.approx(tokens / elapsed, rel=0.15)  # tokens ÷ seconds, as measured
    assert re.search(r"\*\*(Undertrained|Partly trained|Trained well for its size)\.\*\*", report)


def test_server_answered_through_the_openai_client(demo_out):
    _, report = demo_out
    serving = report.split("## Serving")[1]
    assert "**Q:**" in serving and "Time to first token" in serving
    tokens = int(re.search(r"whole answer [\d.]+ s, (\d+) tokens", serving)[1])
    assert tokens >= 1  # the server generated and streamed a reply
    assert "only pretrained" in serving


def test_real_model_answered_and_the_report_judges_it(demo_out, smollm2):
    _, report = demo_out
    real = report.split("## A real model")[1].split("\n## ")[0]
    assert "loaded by `lmstack.load(\"smollm2\")` in" in real
    answers = re.findall(r"^`{4,}text\n(.*?)\n`{4,}$", real, flags=re.MULTILINE | re.DOTALL)
    verdicts = re.findall(r"^\*((?:right|wrong|no number).*)\.\*$", real, flags=re.MULTILINE)
    assert len(answers) == len(verdicts) == len(QUESTIONS)
    assert "Paris" in answers[0] and verdicts[0].startswith("right: Paris")
    # The end-of-turn marker stops generation and is never shown.
    assert not any("<|im_end|>" in answer or "<|" in answer for answer in answers)
    # The arithmetic verdict follows the answer's text, whatever the model wrote.
    assert verdicts[2].startswith(judge("arithmetic", answers[2], "stop")[1])
    assert f"It got {sum(v.startswith('right') for v in verdicts)} of 3 right" in real
    rates = re.findall(r"^\| (fact|text|arithmetic) \| (\d+) \| (\d+) \| (\d+) \| ([\d.]+) \|$",
                       real, flags=re.MULTILINE)
    assert [r[0] for r in rates] == ["fact", "text", "arithmetic"]
    assert all(int(r[2]) > 0 and 1 <= int(r[3]) <= 8 for r in rates)
    assert "calculator" in real


def test_rag_stage_answered_with_sources(demo_out):
    _, report = demo_out
    rag = report.split("## Answers with citations (RAG)")[1].split("\n## ")[0]
    assert f"**Q:** {RAG_QUESTIONS[0]}" in rag
    assert "`assert`" in rag.split("Retrieved: ")[1].split(".")[0]  # the topic that answers


def test_clip_stage_trained_searched_and_captioned(demo_out):
    out, report = demo_out
    clip = report.split("## Image and text (CLIP)")[1].split("\n## ")[0]
    assert len(re.findall(r"^\| (seen|unseen) \| (en|zh) \|", clip, flags=re.MULTILINE)) == 4
    assert (out / "clip_search.png").stat().st_size > 0 and "(clip_search.png)" in clip
    assert len(re.findall(r"^\| \d \| a \w+ \w+ at the", clip, flags=re.MULTILINE)) == 4
    assert (out / "clip" / "captioner" / "decoder" / "model.safetensors").is_file()
    assert "--caption-model" in clip


def test_a_later_stage_reuses_earlier_artifacts(demo_out, tmp_path):
    out, _ = demo_out
    report = run_demo(out, minutes=BUDGET_MIN, console=Console(quiet=True), stages="tokenizer",
                      options=TINY)
    assert re.findall(r"^## (.+)$", report.read_text(), flags=re.MULTILINE) == ["Tokenizer", "Timings"]
    with pytest.raises(ValueError, match="needs the corpus"):
        run_demo(tmp_path, console=Console(quiet=True), stages="tokenizer")


def test_finetune_stage_trained_a_copy_of_smollm2(demo_out, smollm2):
    import torch

    out, report = demo_out
    section = report.split("## Fine-tuning with LoRA")[1].split("\n## ")[0]
    assert section.count("before:") == 4 and section.count("after:") == 4
    assert "2 AdamW steps" in section and (out / "finetune_loss.png").is_file()
    # Replay: short ordinary answers the base model gave itself (12 tokens at most here).
    assert int(re.search(r"(\d+) ordinary ones answered by the base model itself", section)[1])
    assert (out / "finetune" / "adapter" / "adapter_config.json").is_file()
    q_proj = smollm2[0].model.layers[0].self_attn.q_proj  # the shared model: no LoRA in it
    assert type(q_proj) is torch.nn.Linear


def test_toolcall_stage_scored_before_and_after_and_saved_its_adapter(demo_out, smollm2):
    """At tiny scale (2 steps, 2 held-out cases): the numbers that count come from the full
    run (README), not from here."""
    out, report = demo_out
    section = report.split("## SmolLM2 calls tools (LoRA)")[1].split("\n## ")[0]
    rows = re.findall(r"^\| SmolLM2 .+\| (free|constrained) \| (\d+)% \| (\d+)% \|$", section,
                      flags=re.MULTILINE)
    assert [r[0] for r in rows] == ["free", "constrained"] * 2
    assert "2 AdamW steps" in section and section.count("user: ") == 2
    assert "17 × 23 等于多少？" in section and (out / "toolcall_loss.png").is_file()
    adapter = out / "toolcall" / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "tokenizer.json").is_file()
    q_proj = smollm2[0].model.layers[0].self_attn.q_proj  # the shared model: no LoRA in it
    assert type(q_proj).__name__ == "Linear"
