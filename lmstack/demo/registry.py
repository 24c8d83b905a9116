"""The demo's stages, found by file name: every `lmstack/demo/stage_*.py` declares one `STAGE`.

A new capability adds its stage as one new file (the pattern of pytest's plugin discovery);
nothing else changes. Stages run in `order`; `needs` names the artifacts they read.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ARTIFACT_PATHS = {  # where each artifact lives under the demo's output folder
    "corpus": "corpus.txt", "tokenizer": "tokenizer", "model": "model"}


@dataclass(frozen=True)
class Stage:
    name: str                     # what `--stages` calls it
    order: int                    # position in the run (corpus 10, tokenizer 20, ...)
    run: Callable[[Any], None]    # takes the DemoRun; leaves artifacts and a report section
    summary: str                  # one line, shown as the stage starts
    needs: tuple[str, ...] = ()   # artifacts (ARTIFACT_PATHS keys) it reads
    default: bool = True          # part of a plain `lmstack demo`


def discover(package: str, folder: Path, prefix: str, attr: str) -> list[Any]:
    """`attr` of every module `prefix*.py` in `folder` (the package `package`), found by path:
    a registry need not import its own package (which imports the registry: a circle)."""
    return [getattr(importlib.import_module(f"{package}.{info.name}"), attr)
            for info in pkgutil.iter_modules([str(folder)]) if info.name.startswith(prefix)]


def all_stages() -> list[Stage]:
    """Every stage module's STAGE, in run order (imports only the stage modules: cheap)."""
    stages = discover(__package__, Path(__file__).parent, "stage_", "STAGE")
    return sorted(stages, key=lambda s: (s.order, s.name))


def select_stages(names: str | None) -> list[Stage]:
    """The default stages for None, else the comma-separated names in run order."""
    stages = all_stages()
    if not names:
        return [s for s in stages if s.default]
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {s.name for s in stages}
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise ValueError(f"unknown demo stage {', '.join(unknown) or '(none given)'}; "
                         f"--stages takes a comma-separated list of {', '.join(sorted(known))}")
    return [s for s in stages if s.name in wanted]
