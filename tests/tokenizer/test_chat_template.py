"""Chat templates: ChatML default, a model's own Jinja template, and transformers parity."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from lmstack.tokenizer import CHATML_TEMPLATE, Tokenizer, TokenizerError, train_bpe

transformers = pytest.importorskip("transformers")

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather <now> & 'here' in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "城市"}},
                "required": ["city"],
            },
        },
    }
]

CHAT = [
    {"role": "system", "content": "You are terse. 用中文回答。"},
    {"role": "user", "content": "What's the weather in 北京? 🙂"},
    {"role": "assistant", "content": "Let me check."},
    {"role": "user", "content": "  And tomorrow?  "},
]

TOOL_CHAT = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,  # OpenAI style: no text next to the tool call
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    },
    {"role": "tool", "content": '{"temp": 21}'},
]

# A Qwen2-style ChatML template, written here for the test: whitespace-sensitive blocks (it
# relies on trim_blocks/lstrip_blocks), a default system prompt, tools and loop controls.
QWEN_LIKE = """{%- if tools %}
<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}{% else %}You are helpful.{% endif %}


# Tools
<tools>
{% for tool in tools %}
{{ tool | tojson }}
{% endfor %}
</tools><|im_end|>
{% elif messages[0].role != 'system' %}
<|im_start|>system
You are helpful.<|im_end|>
{% endif %}
{% for message in messages %}
{% if message.role == 'system' and tools %}{% continue %}{% endif %}
<|im_start|>{{ message.role }}
{{ message.content }}
{%- if message.tool_calls %}
{% for call in message.tool_calls %}
<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{% endfor %}
{%- endif %}<|im_end|>
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% endif %}"""

# A Llama-3-style template, written here for the test: bos_token variable, a caller-supplied
# date_string, tojson(indent=...), raise_exception, {% generation %} and the trim filter.
LLAMA3_LIKE = r"""{{- bos_token }}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none %}
    {{- "You may call these functions:\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if message.role not in ["user", "assistant", "ipython"] %}
        {{- raise_exception("Unsupported role: " + message.role) }}
    {%- endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}
    {%- if message.role == "assistant" %}
        {%- generation %}{{ message['content'] | trim }}{% endgeneration %}
    {%- else %}
        {{- message['content'] | trim }}
    {%- endif %}
    {{- '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"""

LLAMA_SPECIALS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
]


def with_template(tok: Tokenizer, template: Any, folder: Path) -> tuple[Tokenizer, Any]:
    """Our tokenizer with `template`, and transformers' view of the same saved folder."""
    tok = copy.copy(tok)
    tok.config = copy.deepcopy(tok.config)
    tok.config.chat_template = template
    tok.save(folder)
    return Tokenizer.from_folder(folder), transformers.AutoTokenizer.from_pretrained(folder)


def assert_same_chat(ours: Tokenizer, hf: Any, messages: list, **kwargs: Any) -> str:
    text = ours.apply_chat_template(messages, **kwargs)
    assert text == hf.apply_chat_template(messages, tokenize=False, **kwargs)
    ids = ours.apply_chat_template(messages, tokenize=True, **kwargs)
    assert ids == hf.apply_chat_template(messages, tokenize=True, return_dict=False, **kwargs)
    return text


# ---------------------------------------------------------------------- ChatML default
def test_chatml_default_is_exact(trained: Tokenizer) -> None:
    chat = [{"role": "user", "content": "Hi 你好"}]
    assert trained.apply_chat_template(chat) == "<|im_start|>user\nHi 你好<|im_end|>\n"
    assert trained.apply_chat_template(chat, add_generation_prompt=True) == (
        "<|im_start|>user\nHi 你好<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = trained.apply_chat_template(chat, tokenize=True)
    assert ids[0] == trained.token_to_id("<|im_start|>") and ids[-1] != ids[0]


def test_chatml_is_used_when_a_model_has_no_template(trained: Tokenizer, tmp_path: Path) -> None:
    tok = copy.copy(trained)
    tok.config = copy.deepcopy(trained.config)
    tok.config.chat_template = None
    assert tok.apply_chat_template(CHAT) == trained.apply_chat_template(CHAT)


def test_chatml_matches_transformers(trained: Tokenizer, trained_folder: Path) -> None:
    hf = transformers.AutoTokenizer.from_pretrained(trained_folder)
    assert hf.chat_template == CHATML_TEMPLATE
    assert_same_chat(trained, hf, CHAT)
    assert_same_chat(trained, hf, CHAT, add_generation_prompt=True)
    text = assert_same_chat(trained, hf, TOOL_CHAT, tools=TOOLS, add_generation_prompt=True)
    # tojson keeps <, &, ' and non-ASCII as they are (Jinja's own filter would escape them)
    assert "<now> & 'here'" in text and "城市" in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}' in text
    # a tool call whose arguments are a JSON string (OpenAI wire format) is not re-encoded
    as_string = copy.deepcopy(TOOL_CHAT)
    as_string[1]["tool_calls"][0]["function"]["arguments"] = '{"city": "Paris"}'
    assert trained.apply_chat_template(as_string, tools=TOOLS) == trained.apply_chat_template(
        TOOL_CHAT, tools=TOOLS
    )


# ---------------------------------------------------------------------- model templates
def test_qwen_like_template_matches_transformers(trained: Tokenizer, tmp_path: Path) -> None:
    ours, hf = with_template(trained, QWEN_LIKE, tmp_path)
    text = assert_same_chat(ours, hf, CHAT, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are terse.")
    assert text.endswith("<|im_start|>assistant\n")
    assert_same_chat(ours, hf, CHAT[1:])  # default system prompt branch
    tool_text = assert_same_chat(ours, hf, TOOL_CHAT, tools=TOOLS, add_generation_prompt=True)
    assert "# Tools" in tool_text and "<tool_call>" in tool_text


def test_llama3_like_template_matches_transformers(corpus_file: Path, tmp_path: Path) -> None:
    llama = train_bpe(
        [corpus_file],
        vocab_size=500,
        special_tokens=LLAMA_SPECIALS,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        show_progress=False,
    )
    ours, hf = with_template(llama, LLAMA3_LIKE, tmp_path)
    kwargs = {"date_string": "26 Jul 2024"}
    text = assert_same_chat(ours, hf, CHAT, add_generation_prompt=True, **kwargs)
    assert text.startswith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n")
    assert "Today Date: 26 Jul 2024\n\nYou are terse." in text
    assert "\n\nAnd tomorrow?<|eot_id|>" in text  # | trim applied
    tools_text = assert_same_chat(ours, hf, CHAT, tools=TOOLS, **kwargs)
    assert '    "type": "function"' in tools_text  # indent=4
    # the template writes bos itself; encoding must not add a second one
    ids = ours.apply_chat_template(CHAT, tokenize=True, **kwargs)
    assert ids.count(ours.bos_token_id) == 1 and ids[0] == ours.bos_token_id


def test_template_errors_are_tokenizer_errors(corpus_file: Path, tmp_path: Path) -> None:
    llama = train_bpe(
        [corpus_file], 400, LLAMA_SPECIALS, bos_token="<|begin_of_text|>", show_progress=False
    )
    llama.config.chat_template = LLAMA3_LIKE
    bad = [{"role": "tool", "content": "x"}]
    with pytest.raises(TokenizerError, match="Unsupported role: tool"):
        llama.apply_chat_template(bad, date_string="today")
    with pytest.raises(TokenizerError, match="empty conversation"):
        llama.apply_chat_template([], date_string="today")
    with pytest.raises(TokenizerError, match="does not compile"):
        llama.apply_chat_template(CHAT, chat_template="{% for m in messages %}")
    with pytest.raises(TokenizerError, match="'role'"):
        llama.apply_chat_template([{"content": "no role"}], date_string="today")


def test_sandbox_blocks_mutation_and_internals(trained: Tokenizer) -> None:
    with pytest.raises(TokenizerError, match="unsafe"):
        trained.apply_chat_template(CHAT, chat_template="{{ messages.append(1) }}")
    with pytest.raises(TokenizerError):
        trained.apply_chat_template(
            CHAT, chat_template="{{ ''.__class__.__mro__[1].__subclasses__() }}"
        )


def test_chat_template_jinja_file_wins_over_config(trained_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "with_file"
    folder.mkdir()
    for path in trained_folder.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "chat_template.jinja").write_text(
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}", encoding="utf-8"
    )
    ours = Tokenizer.from_folder(folder)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    text = assert_same_chat(ours, hf, CHAT)
    assert text.startswith("[system] You are terse.")
    # saving keeps the file in step with the config, so the reload still agrees
    ours.config.chat_template = "{% for m in messages %}<{{ m.role }}>{% endfor %}"
    ours.save(folder)
    assert Tokenizer.from_folder(folder).apply_chat_template(CHAT).startswith("<system><user>")


def test_named_templates_pick_tool_use_when_tools_are_given(
    trained: Tokenizer, tmp_path: Path
) -> None:
    templates = {"default": CHATML_TEMPLATE, "tool_use": QWEN_LIKE}
    ours, hf = with_template(trained, templates, tmp_path)
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert [t["name"] for t in saved["chat_template"]] == ["default", "tool_use"]
    plain = assert_same_chat(ours, hf, CHAT)
    with_tools = assert_same_chat(ours, hf, TOOL_CHAT, tools=TOOLS)
    assert "# Tools" in with_tools and "# Tools" not in plain
    assert ours.apply_chat_template(CHAT, chat_template="tool_use") == hf.apply_chat_template(
        CHAT, chat_template="tool_use", tokenize=False
    )
