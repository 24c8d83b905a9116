"""The training progress bar: loss, tokens/s and ETA on rank 0, silent on the other ranks.

Built on rich's Progress (the same library the CLI prints with).
"""

from __future__ import annotations

from typing import Self


class Progress:
    """A rich progress bar with loss, tokens/s and ETA on rank 0; silent elsewhere."""

    def __init__(self, enabled: bool, total: int, start: int):
        self.enabled, self.total, self.start = enabled, total, start

    def __enter__(self) -> Self:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]}"),
                                TextColumn("{task.fields[tok_s]} tok/s"), TimeRemainingColumn())
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.total, completed=self.start,
                                          loss="-", tok_s="-")
        return self

    def update(self, step: int, loss: float, tok_s: float) -> None:
        if self.enabled:
            self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", tok_s=f"{tok_s:,.0f}")

    def note(self, text: str) -> None:
        if self.enabled:
            self.bar.console.print(text)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.bar.stop()
