"""Rich progress bars and console shared by every long loop."""

from __future__ import annotations

import os
from typing import Iterable, Iterator, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)  # warnings that must not mix with a command's stdout


def progress_enabled() -> bool:
    """Bars are off when EDGE_FGIC_NO_PROGRESS is set (CI logs) or on non-rank-0 workers."""
    if os.environ.get("EDGE_FGIC_NO_PROGRESS") or not console.is_terminal:
        return False  # logs and pipes get plain per-epoch lines instead of bars
    return int(os.environ.get("RANK", "0")) == 0


def make_progress(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not progress_enabled(),
    )


def track(iterable: Iterable[T], total: int | None = None, description: str = "", enabled: bool = True) -> Iterator[T]:
    """``rich.progress.track`` with our columns; a no-op wrapper when disabled."""
    if not enabled or not progress_enabled():
        yield from iterable
        return
    with make_progress(transient=True) as prog:
        task = prog.add_task(description, total=total, info="")
        for item in iterable:
            yield item
            prog.advance(task)
