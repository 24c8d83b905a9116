"""The demo's quant stage on the shared SmolLM2, tiny settings: a trade-off table of three rows
with measured numbers, and the fastest model's answers."""

from __future__ import annotations

import re

from rich.console import Console

from lmstack.demo import DemoRun
from lmstack.demo.stage_quant import QUESTIONS, stage_quant


def test_quant_stage_reports_the_trade_off_and_chats(smollm2, tmp_path):
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True), options={"quant": {
        "model": smollm2, "decode_tokens": 4, "eval_tokens": 257, "max_tokens": 8}})
    stage_quant(run)
    (section,) = run.sections
    rows = re.findall(r"^\| (fp32|int8|int4 \(g32\)) \| (\d+) \| ([\d.]+) \| ([\d.]+) \| "
                      r"([\d.]+) \| ([\d.]+)% \|$", section, flags=re.MULTILINE)
    assert [r[0] for r in rows] == ["fp32", "int8", "int4 (g32)"]
    mib = {r[0]: int(r[1]) for r in rows}
    assert mib["int4 (g32)"] < mib["int8"] < mib["fp32"]
    assert float(rows[0][4]) == 0 and float(rows[0][5]) == 100  # fp32 against itself
    assert all(float(r[2]) > 0 for r in rows)
    assert all(q in section for q in QUESTIONS)
    assert "The fastest, " in section
