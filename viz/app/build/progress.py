"""Progress of a build: a `rich` bar on a terminal, one plain line per figure otherwise.

On a terminal the bar shows done/total, the elapsed time and the figures being rendered; finished
figures are printed above it (failures stay on screen). Without a terminal (a log, CI, a notebook)
there is no bar and no escape code: ``viz build: [2/5] gated-cell: svg, png in 0.4 s``, one per figure.
"""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, stream=None):
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.running: dict[str, float] = {}
        self._bar = None
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, force_terminal=True, highlight=False)
            self._bar = Bar(BarColumn(bar_width=24), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.description}"), console=console, transient=True,
                            auto_refresh=False)
            self._task = self._bar.add_task("", total=total)
            self._bar.start()

    def _running(self) -> str:
        now = time.perf_counter()
        return ", ".join(f"{n} ({now - t:.0f} s)" for n, t in self.running.items())

    def _refresh(self) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, description=self._running())
            self._bar.refresh()

    def start(self, name: str) -> None:
        self.running[name] = time.perf_counter()
        self._refresh()

    def tick(self) -> None:
        self._refresh()

    def finish(self, name: str, failed: bool, detail: str) -> None:
        self.running.pop(name, None)
        self.done += 1
        line = f"viz build: [{self.done}/{self.total}] {name}: {detail}"
        if self._bar is not None:
            self._bar.console.print(line, markup=False, style="red" if failed else None)
            self._refresh()
        else:
            self.stream.write(line + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
