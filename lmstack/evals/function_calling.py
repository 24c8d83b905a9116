"""Function-calling accuracy on the Berkeley Function Calling Leaderboard (BFCL) cases.

Follows BFCL's AST evaluation (Patil et al., gorilla): the model's call is parsed, not
executed, and compared with the possible answers: the right function name, every required
parameter present, no parameter the function does not have, and each value among the listed
acceptable ones ("" in a list means the parameter may be left out). Values compare the way
BFCL's checker does: an int is accepted where a float is expected, strings ignore case, spaces
and a few punctuation marks, lists and dicts compare element by element. Categories:
simple / live_simple (one function, one call), multiple (several functions, pick one),
parallel_multiple (several calls, any order), irrelevance (no function fits: correct is no
call). BFCL's schemas say "dict" and "float"; they are mapped to JSON Schema's "object" and
"number" before the model sees them.
Works with any ChatModel: lmstack's engine in process, or any OpenAI-compatible endpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CATEGORIES = ("live_simple", "multiple", "parallel_multiple", "irrelevance")
_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}
_STRIP = re.compile(r"[\s,./\-_*^]")


@dataclass
class Case:
    id: str
    category: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]  # OpenAI `tools` entries, JSON Schema types
    answers: list[dict[str, dict[str, list]]] = field(default_factory=list)  # [] = no call


def to_json_schema(node: Any) -> Any:
    """BFCL's parameter schema with JSON Schema type names (recursively)."""
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, str):
            mapped = _TYPES.get(value, value)
            if mapped is not None:
                out[key] = mapped
        elif key == "properties" and isinstance(value, dict):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        else:
            out[key] = to_json_schema(value)
    return out


def load_cases(folder: str | Path, category: str, limit: int | None = None) -> list[Case]:
    """One category's cases with their possible answers (JSON lines, BFCL's v4 file names)."""
    folder = Path(folder)
    path = folder / f"BFCL_v4_{category}.json"
    if category not in CATEGORIES:
        raise ValueError(f"unknown BFCL category {category!r}; choose from {', '.join(CATEGORIES)}")
    if not path.is_file():
        raise ValueError(f"no BFCL file {path}; pass --data pointing at the folder that holds "
                         "BFCL_v4_*.json and possible_answer/")
    answers: dict[str, list] = {}
    answer_path = folder / "possible_answer" / path.name
    if category != "irrelevance":
        for line in answer_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                answers[row["id"]] = row["ground_truth"]
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        tools = [{"type": "function", "function": {
            "name": f["name"], "description": f.get("description", ""),
            "parameters": to_json_schema(f.get("parameters", {}))}} for f in row["function"]]
        cases.append(Case(row["id"], category, row["question"][0], tools,
                          answers.get(row["id"], [])))
        if limit is not None and len(cases) >= limit:
            break
    return cases


# ---------------------------------------------------------------- the AST check
def _norm(s: str) -> str:
    return _STRIP.sub("", s).lower()


def value_matches(got: Any, allowed: list) -> bool:
    """Whether a model's argument value is one of the acceptable ones."""
    return any(_same(got, want) for want in allowed if want != "")


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want if isinstance(got, bool) and isinstance(want, bool) else False
    if isinstance(want, float) and isinstance(got, (int, float)):
        return float(got) == want  # BFCL accepts an int where a float is expected
    if isinstance(want, int) and isinstance(got, int):
        return got == want
    if isinstance(want, str) and isinstance(got, str):
        return _norm(got) == _norm(want)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want,
                                                                         strict=True))
    if isinstance(want, dict) and isinstance(got, dict):  # nested: acceptable values per key
        return args_match(got, want)
    return got == want


def call_matches(name: str, args: dict[str, Any], answer: dict[str, dict[str, list]],
                 tools: list[dict[str, Any]]) -> bool:
    """One call against one possible answer {function: {param: [acceptable values]}}."""
    (want_name, want_args), = answer.items()
    if name != want_name:
        return False
    props = next((t["function"]["parameters"].get("properties", {}) for t in tools
                  if t["function"]["name"] == name), {})
    if any(k not in props for k in args):
        return False  # a parameter the function does not have
    return args_match(args, want_args)


def args_match(args: dict[str, Any], want: dict[str, Any]) -> bool:
    """Every parameter the answer lists is present with an acceptable value, unless its
    list allows "" (it may be left out); nothing the answer does not list."""
    if set(args) - set(want):
        return False
    for param, allowed in want.items():
        allowed = allowed if isinstance(allowed, list) else [allowed]
        if param not in args:
            if "" not in allowed:
                return False
        elif not value_matches(args[param], allowed):
            return False
    return True


def score(case: Case, calls: list[tuple[str, dict[str, Any]]]) -> bool:
    """Whether the model's calls answer the case (order-free for parallel cases)."""
    if not case.answers:
        return not calls  # irrelevance: the right move is not to call
    if len(calls) != len(case.answers):
        return False
    remaining = list(case.answers)
    for name, args in calls:
        hit = next((a for a in remaining if call_matches(name, args, a, case.tools)), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


# ---------------------------------------------------------------- running a model
def model_calls(model: Any, case: Case, constrained: bool, **sampling: Any
                ) -> tuple[list[tuple[str, dict]], str]:
    """(calls the model made, its text reply). With `constrained`, tool_choice="required":
    the call is decoded under its schema (one call; irrelevance is then unanswerable)."""
    kwargs = {"temperature": 0, "max_tokens": 256, **sampling}
    if constrained:
        kwargs["tool_choice"] = "required"
    reply = model.chat(case.messages, tools=case.tools, **kwargs)
    calls = []
    for call in reply.tool_calls:
        try:
            calls.append((call.name, call.parsed_arguments()))
        except ValueError:
            calls.append((call.name, {"<unparseable>": call.arguments}))
    return calls, reply.content


def evaluate(model: Any, cases: Iterable[Case], constrained: bool = False,
             on_case: Callable[[dict], None] | None = None, workers: int = 1,
             **sampling: Any) -> dict[str, Any]:
    """Accuracy per category, plus how many replies held a parseable call at all. `workers`
    cases are asked at once (a model that batches concurrent calls, such as an AsyncEngine's,
    then decodes them together); records and `on_case` keep the cases' order."""
    per: dict[str, list[bool]] = {}
    records = []
    cases = list(cases)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        replies = list(pool.map(lambda c: model_calls(model, c, constrained, **sampling), cases))
    for case, (calls, text) in zip(cases, replies, strict=True):
        ok = score(case, calls)
        per.setdefault(case.category, []).append(ok)
        record = {"id": case.id, "category": case.category, "correct": ok,
                  "calls": [{"name": n, "arguments": a} for n, a in calls], "text": text}
        records.append(record)
        if on_case:
            on_case(record)
    return {"accuracy": {c: sum(v) / len(v) for c, v in per.items()},
            "cases": {c: len(v) for c, v in per.items()},
            "made_a_call": sum(bool(r["calls"]) for r in records) / max(1, len(records)),
            "records": records}
