"""A synthetic tool-use dataset, generated in code, and the score of a model on it.

To teach a small model to call tools (SmolLM2-135M answers "What is 17 × 23?" with a guess and
ignores tool instructions), it needs conversations where a request is answered by a call, the
call's result comes back, and the answer quotes it. These are generated from templates in
English and Chinese for three tools: arithmetic, unit conversion and date arithmetic. The
same generator with another seed makes a held-out set; `score_tool_use` runs any ChatModel
through the real tool loop on it and counts valid calls and correct final answers.
"""

from __future__ import annotations

import json
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal

from lmstack.agent.loop import run_tools
from lmstack.agent.tools import ToolRegistry, tool
from lmstack.agent.trace import Budget
from lmstack.chat.protocol import ChatModel
from lmstack.chat.types import ToolCall

SYSTEM = "You are a helpful assistant. Use a tool whenever a question needs exact computation."
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
FACTORS = {("km", "mi"): 0.621371, ("mi", "km"): 1.609344, ("kg", "lb"): 2.204623,
           ("lb", "kg"): 0.453592, ("m", "ft"): 3.280840, ("ft", "m"): 0.3048}
UNIT_NAMES = {"en": {"km": "kilometres", "mi": "miles", "kg": "kilograms", "lb": "pounds",
                     "m": "metres", "ft": "feet"},
              "zh": {"km": "公里", "mi": "英里", "kg": "公斤", "lb": "磅", "m": "米", "ft": "英尺"}}


@tool
def calculator(a: float, op: Literal["+", "-", "*"], b: float) -> float:
    """Compute a op b exactly.

    Args:
        a: the first number.
        op: the operation: +, - or *.
        b: the second number.
    """
    value = OPS[op](a, b)
    return int(value) if float(value).is_integer() else round(value, 6)


@tool
def convert_units(value: float, from_unit: Literal["km", "mi", "kg", "lb", "m", "ft"],
                  to_unit: Literal["km", "mi", "kg", "lb", "m", "ft"]) -> float:
    """Convert a length or weight between units.

    Args:
        value: the amount to convert.
        from_unit: the unit it is in.
        to_unit: the unit wanted.
    """
    if (from_unit, to_unit) not in FACTORS:
        raise ValueError(f"cannot convert {from_unit} to {to_unit}")
    return round(value * FACTORS[from_unit, to_unit], 2)


@tool
def add_days(start: str, days: int) -> str:
    """The date a number of days after (or before, if negative) a date.

    Args:
        start: the date as YYYY-MM-DD.
        days: how many days to add.
    """
    return (date.fromisoformat(start) + timedelta(days=days)).isoformat()


TOOLS = ToolRegistry([calculator, convert_units, add_days])

ASK = {
    "calculator": {
        "en": ["What is {a} {sym} {b}?", "Compute {a} {sym} {b}.", "Please work out {a} {sym} {b}.",
               "How much is {a} {sym} {b}?"],
        "zh": ["{a} {sym} {b} 等于多少？", "请计算 {a} {sym} {b}。", "帮我算一下 {a} {sym} {b}。"]},
    "convert_units": {
        "en": ["How many {to} is {value} {frm}?", "Convert {value} {frm} to {to}.",
               "What is {value} {frm} in {to}?"],
        "zh": ["{value} {frm} 等于多少{to}？", "请把 {value} {frm} 换算成{to}。"]},
    "add_days": {
        "en": ["What date is {days} days after {start}?",
               "If I start on {start}, what is the date {days} days later?",
               "Add {days} days to {start}."],
        "zh": ["{start} 之后 {days} 天是哪一天？", "从 {start} 开始再过 {days} 天是几号？"]},
}
ANSWER = {
    "calculator": {"en": "{a} {sym} {b} = {result}.", "zh": "{a} {sym} {b} = {result}。"},
    "convert_units": {"en": "{value} {frm} is {result} {to}.",
                      "zh": "{value} {frm} 等于 {result} {to}。"},
    "add_days": {"en": "{days} days after {start} is {result}.",
                 "zh": "{start} 之后 {days} 天是 {result}。"},
}


@dataclass
class ToolCase:
    question: str
    tool: str
    arguments: dict[str, Any]
    result: str  # the tool's observation, which the final answer must contain
    answer: str
    lang: str

    def messages(self) -> list[dict[str, Any]]:
        """The whole conversation in OpenAI form: request, call, result, answer."""
        call = {"id": "call_0", "type": "function", "function": {
            "name": self.tool, "arguments": json.dumps(self.arguments, ensure_ascii=False)}}
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": self.question},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0", "name": self.tool,
                 "content": self.result},
                {"role": "assistant", "content": self.answer}]


def _case(rng: random.Random, lang: str) -> ToolCase:
    name = rng.choice(list(ASK))
    if name == "calculator":
        sym = rng.choice(["+", "-", "*"])
        a, b = rng.randint(11, 99 if sym == "*" else 9999), rng.randint(11, 99 if sym == "*"
                                                                         else 9999)
        args, fill = {"a": a, "op": sym, "b": b}, {"a": a, "b": b, "sym": "×" if sym == "*"
                                                   else sym}
    elif name == "convert_units":
        frm, to = rng.choice(list(FACTORS))
        value = rng.choice([rng.randint(2, 500), round(rng.uniform(1, 100), 1)])
        args = {"value": value, "from_unit": frm, "to_unit": to}
        fill = {"value": value, "frm": UNIT_NAMES[lang][frm], "to": UNIT_NAMES[lang][to]}
    else:
        start = date(2024, 1, 1) + timedelta(days=rng.randint(0, 900))
        days = rng.randint(2, 120)
        args, fill = {"start": start.isoformat(), "days": days}, {"start": start.isoformat(),
                                                                   "days": days}
    result = TOOLS.run(ToolCall(name, json.dumps(args)))
    question = rng.choice(ASK[name][lang]).format(**fill)
    return ToolCase(question, name, args, result, ANSWER[name][lang].format(**fill,
                                                                            result=result), lang)


def make_cases(n: int, seed: int = 0, zh_share: float = 0.3) -> list[ToolCase]:
    """n conversations; a share in Chinese. Different seeds give disjoint-enough sets (the
    numbers are random), so seed 0 trains and seed 1 is held out."""
    rng = random.Random(seed)
    return [_case(rng, "zh" if rng.random() < zh_share else "en") for _ in range(n)]


def score_tool_use(model: ChatModel, cases: list[ToolCase], constrained: bool = False,
                   workers: int = 1, **sampling: Any) -> dict[str, float]:
    """Run each case through the real tool loop: the share whose first reply calls the right
    tool with arguments that give the right result, and whose final answer holds that result.
    `constrained` forces (and schema-guides) the first call. `workers` cases run at once (a
    model that batches concurrent calls, such as an AsyncEngine's, then decodes them together).
    """
    def one(case: ToolCase) -> tuple[bool, bool]:
        run = run_tools(model, case.messages()[:2], TOOLS, budget=Budget(max_steps=3),
                        force_first_call=constrained,
                        **{"temperature": 0, "max_tokens": 64, **sampling})
        first = run.tool_steps[0] if run.tool_steps else None
        return (first is not None and first.call.name == case.tool
                and first.observation == case.result,
                bool(run.answer) and case.result in run.answer)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, cases))
    return {"valid_calls": sum(v for v, _ in results) / len(cases),
            "correct_answers": sum(c for _, c in results) / len(cases), "cases": len(cases)}
