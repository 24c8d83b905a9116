"""Fine-tuning records as OpenAI-style chats: Alpaca, ShareGPT/OpenAI `messages`, glaive tool
calls, and chosen/rejected preference pairs.

Follows the record formats LLaMA-Factory's data files use (Alpaca: Taori et al. 2023;
ShareGPT `conversations` with `from`/`value`, where glaive's `function_call`/`observation`
turns and a JSON `tools` string carry tool use). Every format becomes one shape: a list of
{"role", "content", "tool_calls"?} messages plus the tool schemas, which is what chat
templates render, at training time and at inference time alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ShareGPT's speaker names -> OpenAI roles. A function_call turn is the assistant calling a
# tool; an observation is the tool's answer.
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "function_call": "assistant", "observation": "tool",
                  "tool": "tool"}


class RecordError(ValueError):
    """A data record that cannot be read as a chat; the message names the record and the fix."""


@dataclass
class Chat:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None


@dataclass
class PreferencePair:
    prompt: Chat             # the conversation up to the reply being judged
    chosen: dict[str, Any]   # the preferred assistant message
    rejected: dict[str, Any]  # the dispreferred one


def _tool_call_message(value: str, where: str) -> dict[str, Any]:
    try:
        call = json.loads(value)
        name, arguments = call["name"], call.get("arguments", {})
    except (json.JSONDecodeError, KeyError, TypeError):
        raise RecordError(f"{where}: a function_call turn must hold JSON with a 'name' and "
                          "'arguments'") from None
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"role": "assistant", "content": None,
            "tool_calls": [{"type": "function", "function": {"name": name,
                                                             "arguments": arguments}}]}


def _tools(raw: Any, where: str) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    if isinstance(raw, str):  # glaive keeps the schemas as one JSON string
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            raise RecordError(f"{where}: 'tools' is not valid JSON") from None
    if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
        raise RecordError(f"{where}: 'tools' must be a list of function schemas")
    return [t if "function" in t else {"type": "function", "function": t} for t in raw]


def _sharegpt_turn(turn: Any, where: str) -> dict[str, Any]:
    if not isinstance(turn, Mapping) or "from" not in turn or "value" not in turn:
        raise RecordError(f"{where}: each ShareGPT turn needs 'from' and 'value'")
    role = SHAREGPT_ROLES.get(turn["from"])
    if role is None:
        raise RecordError(f"{where}: unknown speaker {turn['from']!r}; use one of "
                          f"{', '.join(SHAREGPT_ROLES)}")
    if turn["from"] == "function_call":
        return _tool_call_message(turn["value"], where)
    return {"role": role, "content": turn["value"]}


def _system(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": record["system"]}] if record.get("system") else []


def to_chat(record: Any, where: str = "record") -> Chat:
    """One record of any supported format as a Chat."""
    if not isinstance(record, Mapping):
        raise RecordError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if "messages" in record:  # OpenAI / ShareGPT-in-OpenAI-roles
        messages = [dict(m) for m in record["messages"]]
        if not all("role" in m for m in messages):
            raise RecordError(f"{where}: every message needs a 'role'")
        return Chat(messages, _tools(record.get("tools"), where))
    if "conversations" in record:
        turns = [_sharegpt_turn(t, where) for t in record["conversations"]]
        return Chat(_system(record) + turns, _tools(record.get("tools"), where))
    if "instruction" in record and "output" in record:  # Alpaca
        prompt = record["instruction"]
        if record.get("input"):
            prompt = f"{prompt}\n\n{record['input']}"
        return Chat(_system(record) + [{"role": "user", "content": prompt},
                                       {"role": "assistant", "content": record["output"]}])
    raise RecordError(f"{where}: not a chat record; expected 'messages', 'conversations' "
                      "(ShareGPT) or 'instruction' + 'output' (Alpaca)")


def to_preference(record: Any, where: str = "record") -> PreferencePair:
    """A {conversations | messages | instruction, chosen, rejected} record as a PreferencePair."""
    if not isinstance(record, Mapping) or "chosen" not in record or "rejected" not in record:
        raise RecordError(f"{where}: a preference record needs 'chosen' and 'rejected' "
                          "(DPO and ORPO train on pairs)")
    prompt_record = {k: v for k, v in record.items() if k not in ("chosen", "rejected")}
    if "instruction" in prompt_record:
        prompt_record["output"] = ""
        prompt = to_chat(prompt_record, where)
        prompt.messages.pop()  # the empty assistant turn
    else:
        prompt = to_chat(prompt_record, where)
    replies = []
    for key in ("chosen", "rejected"):
        value = record[key]
        if isinstance(value, Mapping) and "from" in value:
            value = _sharegpt_turn(value, where)
        elif isinstance(value, str):
            value = {"role": "assistant", "content": value}
        if not isinstance(value, Mapping) or value.get("role") != "assistant":
            raise RecordError(f"{where}: '{key}' must be an assistant reply")
        replies.append(dict(value))
    return PreferencePair(prompt, *replies)


def read_records(path: str | Path) -> list[Any]:
    """A JSON array file or a JSON-lines file of records."""
    path = Path(path)
    if not path.is_file():
        raise RecordError(f"no such data file: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        records = json.loads(text)
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not valid JSON (line {e.lineno})") from None
    if not isinstance(records, list):
        raise RecordError(f"{path}: expected a JSON array of records (or a .jsonl file)")
    return records
