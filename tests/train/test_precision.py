"""`precision: auto` on a CPU: a decisive probe whose answer is cached per machine (so the same
command trains the same way every run), written atomically, and printed with its reason."""

from __future__ import annotations

import json

import torch
from rich.console import Console

from lmstack.train.precision import cache_file, decide, probe_cpu, resolve_precision

CPU = torch.device("cpu")


def test_near_ties_stay_fp32_and_clear_wins_pick_bf16():
    assert decide(1.0, 0.95).precision == "fp32"  # 5% is noise, not a reason to switch
    assert decide(1.0, 1.5).precision == "fp32"
    choice = decide(1.0, 0.5)
    assert choice.precision == "bf16" and "2.0× faster" in choice.reason


def test_answer_is_cached_per_machine_and_stable(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSTACK_CACHE_DIR", str(tmp_path))
    first = probe_cpu()
    entries = json.loads(cache_file().read_text())
    assert [e["precision"] for e in entries.values()] == [first.precision]
    assert [p.name for p in tmp_path.iterdir()] == ["precision.json"]  # no temp file left
    # Later runs read the answer instead of re-timing: the same choice every time.
    for _ in range(3):
        again = probe_cpu()
        assert again.precision == first.precision and "cached in" in again.reason


def test_auto_prints_the_choice_and_why(tmp_path, monkeypatch):
    monkeypatch.setenv("LMSTACK_CACHE_DIR", str(tmp_path))
    console = Console(record=True, width=200)
    chosen = resolve_precision("auto", CPU, console)
    line = console.export_text().strip()
    assert line.startswith(f"precision auto → {chosen}: ") and "matmul" in line
    assert resolve_precision("fp32", CPU, console) == "fp32"
