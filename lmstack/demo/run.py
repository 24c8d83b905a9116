"""`lmstack demo`: the roadmap end to end on one laptop, writing a report with plots.

Runs the registered stages (registry.py) in order over one shared `DemoRun`; each leaves its
artifacts in the output folder and a section in `report.md` (written atomically at the end).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from lmstack.demo.registry import ARTIFACT_PATHS, Stage, select_stages
from lmstack.fileio import atomic_write_text


@dataclass
class DemoRun:
    out: Path
    corpus_name: str
    minutes: float
    console: Console
    # Per-stage settings, e.g. {"pretrain": {"model": {...}}}: tests run the stages tiny.
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)

    def section(self, title: str, body: str) -> None:
        self.sections.append(f"## {title}\n\n{body.strip()}\n")

    def settings(self, stage: str, defaults: dict[str, Any]) -> dict[str, Any]:
        return {**defaults, **self.options.get(stage, {})}


def fence(text: str) -> str:
    """Model output as a fenced block: it may hold anything, backticks included, and a fence
    longer than any run of backticks inside always closes."""
    shown = text.strip() or (f"({len(text)} whitespace characters)" if text else "(empty)")
    longest = max((len(ticks) for ticks in re.findall(r"`+", shown)), default=0)
    ticks = "`" * max(4, longest + 1)
    return f"{ticks}text\n{shown}\n{ticks}"


def _find_inputs(run: DemoRun, stage: Stage) -> None:
    """Artifacts a stage needs but no stage of this run made: reuse an earlier run's."""
    for name in stage.needs:
        if name in run.artifacts:
            continue
        path = run.out / ARTIFACT_PATHS[name]
        if not path.exists():
            raise ValueError(f"demo stage {stage.name!r} needs the {name} an earlier stage "
                             f"writes to {path}; add that stage to --stages or run it once")
        run.artifacts[name] = path


def run_demo(out: Path, corpus: str = "stdlib", minutes: float = 3.0,
             console: Console | None = None, stages: str | None = None,
             options: dict[str, dict[str, Any]] | None = None) -> Path:
    """Run the chosen stages (None: the default ones) and write OUT/report.md."""
    console = console or Console()
    chosen = select_stages(stages)
    out.mkdir(parents=True, exist_ok=True)
    run = DemoRun(out, corpus, minutes, console, options or {})
    timings = []
    for stage in chosen:
        _find_inputs(run, stage)
        console.rule(f"[bold]{stage.name}[/]: {stage.summary}")
        t0 = time.perf_counter()
        stage.run(run)
        timings.append((stage.name, time.perf_counter() - t0))
        console.print(f"{stage.name} done in {timings[-1][1]:.1f}s")
    report = out / "report.md"
    rows = "\n".join(f"| {name} | {seconds:.1f} s |" for name, seconds in timings)
    atomic_write_text(report, "# lmstack demo report\n\n" + "\n".join(run.sections)
                      + f"\n## Timings\n\n| stage | wall clock |\n|---|---|\n{rows}\n")
    return report
