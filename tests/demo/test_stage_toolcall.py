"""The tool-calling stage's pieces: its training text is the engine's prompt text for a tool
conversation (the request, and again after the tool's result), the tool template travels with
the saved tokenizer, and `lmstack agent eval --adapter` refuses a folder that holds no adapter
in one line. The stage itself runs in test_demo_run.py."""

from __future__ import annotations

from cli_helpers import run_lmstack

from lmstack.agent.loop import run_tools
from lmstack.agent.synthetic import TOOLS, make_cases
from lmstack.chat.tool_calls import parse_tool_calls
from lmstack.chat.types import ChatResult, Message, to_wire, tool_schema
from lmstack.data.chat_records import Chat
from lmstack.data.mlm import IGNORE_INDEX
from lmstack.data.sft import tokenize_chat
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
    # One line per tool, not its JSON Schema: the whole prompt stays short.
    assert 'calculator(a: number, op: "+"|"-"|"*", b: number): ' in tok.decode(prompt)
    assert all(f"\n{name}(" in tok.decode(prompt) for name in TOOLS.names()) and len(prompt) < 260
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


def test_prompt_after_the_tool_result_is_the_training_text(smollm2):
    """The second turn: once the loop has run the call and appended its result, the prompt
    the engine renders is the training text, token for token, up to the answer."""
    tok = with_tool_template(smollm2[1])
    case = make_cases(1, seed=2, zh_share=0.0)[0]
    schemas = TOOLS.schemas()
    example = tokenize_chat(tok, Chat(case.messages(), schemas))
    trained_call = tok.decode(example.ids).split("<|im_start|>assistant\n")[1]
    replies = [Message("assistant", None, parse_tool_calls(trained_call.split("<|im_end|>")[0])[1]),
               Message("assistant", case.answer)]
    prompts = []

    class Recorder:  # renders what it is sent exactly as EngineChatModel does
        def chat(self, messages, tools=None, **sampling):
            wire = to_wire(list(messages))
            prompts.append(chat_prompt_ids(tok, wire, [tool_schema(t) for t in tools]))
            return ChatResult(replies[len(prompts) - 1])

    run = run_tools(Recorder(), case.messages()[:2], TOOLS)
    assert run.answer == case.answer and run.tool_steps[0].observation == case.result
    second = prompts[1]
    assert tok.decode(second).endswith(
        f"<|im_start|>tool\n{case.result}<|im_end|>\n<|im_start|>assistant\n")
    assert example.ids[:len(second)] == second
    assert tok.decode(example.ids[len(second):]).startswith(case.answer + "<|im_end|>")


def test_agent_eval_adapter_must_be_an_adapter_folder(tmp_path):
    result = run_lmstack("agent", "eval", "smollm2", "--adapter", str(tmp_path / "nope"),
                         timeout=120)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a PEFT adapter folder" in lines[0], result.stderr
