"""The tool-calling stage's pieces: its training text is the engine's prompt text for a tool
conversation, the tool template travels with the saved tokenizer, and `lmstack agent eval
--adapter` refuses a folder that holds no adapter in one line."""

from __future__ import annotations

import re

from cli_helpers import run_lmstack
from rich.console import Console

from lmstack.agent.synthetic import TOOLS, make_cases
from lmstack.data.chat_records import Chat
from lmstack.data.mlm import IGNORE_INDEX
from lmstack.data.sft import tokenize_chat
from lmstack.demo import run_demo
from lmstack.demo.toolcall import with_tool_template
from lmstack.tokenizer import Tokenizer
from lmstack.tokenizer.chat_prompt import chat_prompt_ids


def test_training_text_is_the_inference_prompt_for_a_tool_chat(smollm2, tmp_path):
    own = smollm2[1]
    tok = with_tool_template(own)
    case = make_cases(1, seed=1, zh_share=1.0)[0]  # a Chinese request
    messages, schemas = case.messages(), TOOLS.schemas()
    example = tokenize_chat(tok, Chat(messages, schemas))
    prompt = chat_prompt_ids(tok, messages[:2], schemas)  # what EngineChatModel sends
    assert example.ids[:len(prompt)] == prompt
    assert all(f'"name": "{name}"' in tok.decode(prompt) for name in TOOLS.names())
    # Loss on the call (through its end of turn) and on the answer, nowhere else.
    learned = tok.decode([i for i, y in zip(example.ids, example.labels, strict=True)
                          if y != IGNORE_INDEX])
    assert learned.startswith("<tool_call>") and f'"name": "{case.tool}"' in learned
    assert learned.endswith(case.answer + "<|im_end|>") and case.question not in learned
    # The original tokenizer is left alone: SmolLM2's own template still drops the tools.
    assert "<tools>" not in own.apply_chat_template(messages[:2], tools=schemas)
    # Saved beside the adapter, the tokenizer keeps both templates.
    again = Tokenizer.from_folder(tok.save(tmp_path))
    assert chat_prompt_ids(again, messages[:2], schemas) == prompt
    assert chat_prompt_ids(again, messages[:2]) == chat_prompt_ids(own, messages[:2])


def test_agent_eval_adapter_must_be_an_adapter_folder(tmp_path):
    result = run_lmstack("agent", "eval", "smollm2", "--adapter", str(tmp_path / "nope"),
                         timeout=120)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a PEFT adapter folder" in lines[0], result.stderr


def test_toolcall_stage_scores_before_and_after_and_saves_its_adapter(smollm2, tmp_path):
    """The stage end to end at tiny scale (2 steps, 2 held-out cases): the numbers that count
    come from the full-size run, not from here."""
    tiny = {"model": smollm2, "held_out": 2, "recipe": {
        "steps": 2, "r": 2, "alpha": 4, "train_cases": 4, "micro_batch_size": 1}}
    report = run_demo(tmp_path, console=Console(quiet=True), stages="toolcall",
                      options={"toolcall": tiny}).read_text(encoding="utf-8")
    section = report.split("## SmolLM2 calls tools (LoRA)")[1].split("## Timings")[0]
    rows = re.findall(r"^\| SmolLM2 .+\| (free|constrained) \| (\d+)% \| (\d+)% \|$", section,
                      flags=re.MULTILINE)
    assert [r[0] for r in rows] == ["free", "constrained"] * 2
    assert "2 AdamW steps" in section and section.count("assistant: ") >= 2
    adapter = tmp_path / "toolcall" / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "tokenizer.json").is_file()
    q_proj = smollm2[0].model.layers[0].self_attn.q_proj  # the shared model: no LoRA in it
    assert type(q_proj).__name__ == "Linear"
