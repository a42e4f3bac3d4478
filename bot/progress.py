"""A progress bar on the terminal for renders, shared by ``forger render`` and ``forger demo``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from model.settings import Progress as RenderProgress


@contextmanager
def render_progress(label: str, console: Console) -> Iterator[Callable[[RenderProgress], None]]:
    """Show a bar while the block runs; yields the callback that moves it (thread-safe)."""
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), console=console,
    ) as bar:
        task = bar.add_task(label, total=None, loss="-")

        def update(p: RenderProgress) -> None:
            bar.update(task, completed=p.iteration, total=p.total, loss=f"{p.loss:.4g}")

        yield update
