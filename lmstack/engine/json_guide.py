"""Schema-constrained decoding: only tokens that keep the output a valid start of JSON matching
a JSON Schema may be sampled, so the finished output parses and matches it.

Small models get tool-call syntax wrong constantly; masking makes them usable (the idea of
Outlines, Willard & Louf 2023, "Efficient Guided Generation for LLMs", and of vLLM's guided
decoding). This is the readable version: a character-level pushdown recognizer for JSON
shaped by the schema, run on each candidate token's text. Candidates are tried in the
model's own order of preference (top-k by logit, widening when none fits), so greedy
decoding picks the model's favourite *valid* token, and sampling draws among the valid ones
of the top few dozen. Supported schema: type (object, array, string, integer, number,
boolean, null, or a list of them), properties + required, items + minItems/maxItems,
maxLength, enum, const, anyOf/oneOf; no schema (or {}) means any JSON value. Other keywords (pattern, format,
minimum, ...) are not enforced. At most one whitespace character is allowed between tokens,
so a model cannot pad forever.

A recognizer state is a tuple of stacks, one per schema alternative still alive; a stack is
a tuple of frames, each a small tuple, so trying a token on a copy costs nothing to undo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from torch import Tensor

WHITESPACE = " \n\t"
_INT = re.compile(r"-?(?:0|[1-9]\d*)")
_NUM = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_INT_PREFIX = re.compile(r"-?(?:0|[1-9]\d*)?")
_NUM_PREFIX = re.compile(r"-?(?:(?:0|[1-9]\d*)(?:\.\d*)?(?:(?<=\d)[eE][+-]?\d*)?)?")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
            "t": "\t"}
MAX_NUMBER_CHARS = 24
MAX_STATES = 32  # alternatives alive at once (overlapping anyOf branches); more are dropped
ANY = "any"


def alternatives(schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The schema as simple alternatives, each with one "kind": string, number, integer,
    literal (a fixed JSON text such as true or 3), object or array."""
    schema = schema or {}
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches:
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
        return [alt for b in branches for alt in alternatives({**rest, **b})]
    if "const" in schema:
        schema = {**schema, "enum": [schema["const"]]}
    if "enum" in schema:
        strings = [v for v in schema["enum"] if isinstance(v, str)]
        alts = [{"kind": "string", "enum": strings}] if strings else []
        return alts + [{"kind": "literal", "text": json.dumps(v)} for v in schema["enum"]
                       if not isinstance(v, str)]
    types = schema.get("type")
    if types is None:
        types = ("object" if "properties" in schema else "array" if "items" in schema
                 else ["object", "array", "string", "number", "boolean", "null"])
    out = []
    for t in [types] if isinstance(types, str) else types:
        if t == "boolean":
            out += [{"kind": "literal", "text": "true"}, {"kind": "literal", "text": "false"}]
        elif t == "null":
            out.append({"kind": "literal", "text": "null"})
        elif t in ("string", "number", "integer", "object", "array"):
            out.append({**schema, "kind": t})
        else:
            raise ValueError(f"JSON Schema type {t!r} is not supported for guided decoding")
    return out


def _open(alt: dict[str, Any], c: str) -> tuple | None:
    """The frame a value of this alternative starts with, given its first character."""
    kind = alt["kind"]
    if kind == "string" and c == '"':
        return ("S", alt.get("enum"), "", False, alt.get("maxLength"))
    if kind in ("number", "integer") and c in "-0123456789":
        return ("N", kind, c)
    if kind == "literal" and alt["text"][0] == c:
        return ("L", alt["text"], 1)
    if kind == "object" and c == "{":
        return ("O", alt, frozenset(), "first", 0, None)
    if kind == "array" and c == "[":
        return ("A", alt, 0, "first", 0)
    return None


def _property_schema(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return (obj.get("properties") or {}).get(key, {})


def _free_keys(obj: dict[str, Any], seen: frozenset) -> list[str] | None:
    """Keys still allowed: the listed properties not yet seen, or None for any new key."""
    props = obj.get("properties")
    return None if props is None else [k for k in props if k not in seen]


def _closable(obj: dict[str, Any], seen: frozenset) -> bool:
    return set(obj.get("required") or ()) <= seen


def step(stack: tuple, c: str) -> list[tuple]:
    """Every stack the character c can lead to (none: c breaks the JSON or the schema)."""
    if not stack:
        return []  # the value is complete: nothing more may follow
    frame, below = stack[-1], stack[:-1]
    tag = frame[0]
    if tag == "V":  # expecting a value
        _, schema, ws = frame
        if c in WHITESPACE:
            return [(*below, ("V", schema, ws + 1))] if ws < 1 else []
        out = []
        for alt in alternatives(schema):
            opened = _open(alt, c)
            if opened is None:
                continue
            if opened[0] == "L" and len(opened[1]) == 1:  # a one-character literal, e.g. 5
                out += _close(below, None)
            else:
                out.append((*below, opened))
        return out
    if tag == "S":  # inside a string; `allowed` limits it (enum values, or object keys)
        _, allowed, buf, esc, cap = frame
        if esc is True:
            if c == "u":  # one character in 4 hex digits; not in enums or keys (no match)
                return [(*below, ("S", allowed, buf + "?", 4, cap))] if allowed is None else []
            return ([(*below, ("S", allowed, buf + _ESCAPES[c], False, cap))]
                    if c in _ESCAPES and _fits(allowed, buf + _ESCAPES[c]) else [])
        if esc:  # hex digits of a \uXXXX escape
            if c not in "0123456789abcdefABCDEF" or allowed is not None:
                return []
            return [(*below, ("S", allowed, buf, esc - 1 or False, cap))]
        if c == '"':
            return _close(below, buf) if allowed is None or buf in allowed else []
        if cap is not None and len(buf) >= cap:  # maxLength reached: only the quote may come
            return []
        if c == "\\":  # only when some escape can follow (no dead ends: see the tests)
            ok = allowed is None or any(_fits(allowed, buf + e) for e in _ESCAPES.values())
            return [(*below, ("S", allowed, buf, True, cap))] if ok else []
        if ord(c) < 0x20 or not _fits(allowed, buf + c):
            return []
        return [(*below, ("S", allowed, buf + c, False, cap))]
    if tag == "N":  # inside a number: it ends at the first character that cannot extend it
        _, kind, buf = frame
        prefix = _INT_PREFIX if kind == "integer" else _NUM_PREFIX
        if prefix.fullmatch(buf + c) and len(buf) < MAX_NUMBER_CHARS:
            return [(*below, ("N", kind, buf + c))]
        done = (_INT if kind == "integer" else _NUM).fullmatch(buf)
        return [s for after in _close(below, None) for s in step(after, c)] if done else []
    if tag == "L":
        _, text, i = frame
        if c != text[i]:
            return []
        return _close(below, None) if i + 1 == len(text) else [(*below, ("L", text, i + 1))]
    if tag == "O":
        return _object(below, frame, c)
    return _array(below, frame, c)


def _fits(allowed: Sequence[str] | None, buf: str) -> bool:
    return allowed is None or any(v.startswith(buf) for v in allowed)


def _close(below: tuple, text: str | None) -> list[tuple]:
    """Pop a finished value; a finished key string moves its object on to the colon."""
    if below and below[-1][0] == "O" and below[-1][3] == "key":
        _, obj, seen, _, _, _ = below[-1]
        return [(*below[:-1], ("O", obj, seen | {text}, "colon", 0, text))]
    return [below]


def _object(below: tuple, frame: tuple, c: str) -> list[tuple]:
    _, obj, seen, phase, ws, key = frame
    if c in WHITESPACE:
        return [(*below, ("O", obj, seen, phase, ws + 1, key))] if ws < 1 else []
    keys = _free_keys(obj, seen)
    if phase in ("first", "next") and c == '"' and (keys is None or keys):
        allowed = None if keys is None else keys
        # The key string runs on top of the object, which waits in phase "key".
        return [(*below, ("O", obj, seen, "key", 0, None), ("S", allowed, "", False, None))]
    if phase in ("first", "after") and c == "}" and _closable(obj, seen):
        return _close(below, None)
    if phase == "colon" and c == ":":
        value = _property_schema(obj, key) if obj.get("properties") is not None else {}
        return [(*below, ("O", obj, seen, "after", 0, None), ("V", value, 0))]
    if phase == "after" and c == "," and (keys is None or keys):
        return [(*below, ("O", obj, seen, "next", 0, None))]
    return []


def _array(below: tuple, frame: tuple, c: str) -> list[tuple]:
    _, arr, count, phase, ws = frame
    if c in WHITESPACE:
        return [(*below, ("A", arr, count, phase, ws + 1))] if ws < 1 else []
    lo, hi = arr.get("minItems", 0), arr.get("maxItems")
    if phase in ("first", "after") and c == "]" and count >= lo:
        return _close(below, None)
    if phase == "after":
        if c == "," and (hi is None or count < hi):
            return [(*below, ("A", arr, count, "item", 0))]
        return []
    if hi is not None and count >= hi:
        return []
    # The first character of an item: hand it to a fresh value frame.
    return step((*below, ("A", arr, count + 1, "after", 0), ("V", arr.get("items", {}), 1)), c)


MAX_SCHEMA_DEPTH = 32
_COUNTS = ("maxLength", "minItems", "maxItems")


def check_schema(schema: Any, depth: int = 0) -> None:
    """Raise ValueError naming what is malformed or unsupported; the recognizer then never
    meets a surprise mid-generation (a client's schema must fail its own request, at once)."""
    if depth > MAX_SCHEMA_DEPTH:
        raise ValueError(f"the JSON Schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
    if not isinstance(schema, dict):
        raise ValueError(  # noqa: TRY004 - a client's bad input: a 400, not a TypeError
            f"a JSON Schema must be an object, got {type(schema).__name__}")
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = schema[key]
            if not isinstance(branches, list) or not branches:
                raise ValueError(f"{key} must be a non-empty list of schemas")
            for b in branches:
                check_schema(b, depth + 1)
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        raise ValueError("enum must be a non-empty list")
    types = schema.get("type")
    if types is not None and not isinstance(types, (str, list)):
        raise ValueError("type must be a string or a list of strings")
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise ValueError("properties must be an object mapping names to schemas")
        for sub in props.values():
            check_schema(sub, depth + 1)
    required = schema.get("required")
    if required is not None and not (isinstance(required, list)
                                     and all(isinstance(r, str) for r in required)):
        raise ValueError("required must be a list of property names")
    if props is not None and required and not set(required) <= set(props):
        raise ValueError(f"required names properties that are not defined: "
                         f"{sorted(set(required) - set(props))}")
    if "items" in schema:
        check_schema(schema["items"], depth + 1)
    for key in _COUNTS:
        value = schema.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool)
                                      and value >= 0):
            raise ValueError(f"{key} must be a non-negative integer")
    lo, hi = schema.get("minItems") or 0, schema.get("maxItems")
    if hi is not None and hi < lo:
        raise ValueError("maxItems is below minItems: no array can match")
    alternatives(schema)  # unsupported type names


class JsonGuide:
    """One request's recognizer: which tokens may come next, and when the JSON is complete."""

    def __init__(self, schema: dict[str, Any] | None, token_texts: Sequence[str]):
        check_schema(schema or {})  # a bad schema fails now, as the request's own error
        self.token_texts = token_texts
        self.states: list[tuple] = [(("V", schema or {}, 1),)]  # no leading whitespace

    @staticmethod
    def advance(states: list[tuple], text: str) -> list[tuple]:
        for c in text:
            states = [s for st in states for s in step(st, c)][:MAX_STATES]
            if not states:
                break
        return states

    def allows(self, token_id: int) -> bool:
        text = self.token_texts[token_id] if token_id < len(self.token_texts) else ""
        return bool(text) and bool(self.advance(self.states, text))

    def accept(self, token_id: int) -> None:
        self.states = self.advance(self.states, self.token_texts[token_id])

    @property
    def done(self) -> bool:
        """The JSON value is complete: generation should stop here."""
        return any(finished(s) for s in self.states)


def finished(stack: tuple) -> bool:
    """An empty stack, or a top-level number at its length cap (nothing can end it: a number
    ends at the character after it, and the end of the output is no character)."""
    if not stack:
        return True
    frame = stack[0]
    return (len(stack) == 1 and frame[0] == "N" and len(frame[2]) >= MAX_NUMBER_CHARS
            and bool((_INT if frame[1] == "integer" else _NUM).fullmatch(frame[2])))


def constrain(guide: JsonGuide, logits: Tensor, widths: Sequence[int] = (64, 1024)) -> bool:
    """Keep only tokens the guide allows, in place, searching the model's favourites first
    (top 64, then 1024, then everything); False when no token at all fits."""
    vocab = logits.shape[-1]
    checked = 0
    for width in (*widths, vocab):
        width = min(width, vocab)
        order = logits.topk(width).indices.tolist()[checked:]
        allowed = [t for t in order if guide.allows(t)]
        if allowed:
            kept = logits[allowed].clone()
            logits.fill_(float("-inf"))
            logits[allowed] = kept
            return True
        checked = width
        if width == vocab:
            break
    return False


def token_texts(tokenizer: Any, vocab_size: int) -> list[str]:
    """Each token id's text ("" for special tokens and ids past the tokenizer, which the
    guide never allows: an empty token could be repeated forever)."""
    special = set(tokenizer.all_special_ids)
    n = min(len(tokenizer), vocab_size)
    texts = [("" if i in special else tokenizer.decode([i])) for i in range(n)]
    return texts + [""] * (vocab_size - n)
