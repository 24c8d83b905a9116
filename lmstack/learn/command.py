"""The `lmstack learn` command: list the topics, or run one and print where its report is."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lmstack.learn.registry import all_topics, find_topic

console = Console()


def learn(
    name: str = typer.Argument(None, help="A topic; leave out to list them."),
    out: Path = typer.Option(Path("runs/learn"), "--out", "-o",
                             help="Reports go to OUT/NAME/."),
    tiny: bool = typer.Option(False, "--tiny", help="A seconds-long run (what the tests use)."),
) -> None:
    """Run one of the roadmap's principles: fit or train it, compare with the reference
    library, and write a report with plots."""
    if name is None:
        table = Table("topic", "what it shows", title="lmstack learn NAME")
        for topic in all_topics():
            table.add_row(topic.name, topic.summary)
        console.print(table)
        return
    topic = find_topic(name)
    folder = out / topic.name
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    results = topic.run(folder, tiny)
    console.print(f"{topic.name}: done in {time.perf_counter() - t0:.1f} s; report in "
                  f"{folder / 'report.md'}")
    for key, value in results.items():
        console.print(f"  {key}: {value}")
