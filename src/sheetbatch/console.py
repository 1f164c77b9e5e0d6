"""The terminal progress view: one more reader of the log, drawn with rich."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from progress import Store


def _eta_text(snapshot: dict[str, Any]) -> str:
    eta = snapshot.get("eta_seconds")
    if eta is None:
        return "ETA --:--"
    minutes, seconds = divmod(round(eta), 60)
    return f"ETA {minutes:d}:{seconds:02d}"


def summary_line(snapshot: dict[str, Any]) -> str:
    """One line of counts: "12/50 (24%) succeeded 10 · failed 2 · running 8 · queued 30"."""
    c = snapshot["counts"]
    return (
        f"{snapshot['processed']}/{snapshot['total']} ({snapshot['percent']:.0f}%)  "
        f"succeeded {c['succeeded']} · failed {c['failed']} · running {c['running']} · "
        f"queued {c['queued']} · cancelled {c['cancelled']}"
    )


class BatchView:
    """Follows a batch in the terminal until `done()` says stop; redraws on every new event."""

    def __init__(
        self, store: Store, batch_id: str, console: Console, *, active_rows: int = 8
    ) -> None:
        self.store = store
        self.batch_id = batch_id
        self.console = console
        self.active_rows = active_rows
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=None),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[eta]}"),
            console=console,
            expand=True,
        )
        self.task = self.progress.add_task(batch_id, total=1, counts="", eta="")

    def _active_table(self) -> Table:
        table = Table(show_header=True, header_style="dim", box=None, expand=True)
        table.add_column("row", justify="right", width=6)
        table.add_column("company", ratio=2, no_wrap=True)
        table.add_column("phase", ratio=1, no_wrap=True)
        table.add_column("", ratio=2, no_wrap=True)
        for job in self.store.jobs(
            batch_id=self.batch_id, statuses=["running"], limit=self.active_rows
        ):
            phase = job.get("phase")
            where = f"{phase['index']}/{phase['count']} {phase['name']}" if phase else "starting"
            table.add_row(
                str(job["row"]), job["label"] or job["job_id"], where, job["message"] or ""
            )
        return table

    def _update(self) -> dict[str, Any]:
        snapshot = self.store.batch(self.batch_id)
        c = snapshot["counts"]
        self.progress.update(
            self.task,
            total=max(1, snapshot["total"]),
            completed=snapshot["processed"],
            counts=f"✓ {c['succeeded']}  ✗ {c['failed']}  ▶ {c['running']}  … {c['queued']}",
            eta=_eta_text(snapshot),
        )
        return snapshot

    def follow(self, done: Callable[[], bool]) -> dict[str, Any]:
        """Draw until `done()` is true; returns the last snapshot."""
        cursor = self.store.last_event_id()
        if not self.console.is_terminal:
            return self._follow_plain(done, cursor)
        with Live(
            Group(self.progress, self._active_table()),
            console=self.console,
            refresh_per_second=8,
            transient=False,
        ) as live:
            while True:
                self._update()
                live.update(Group(self.progress, self._active_table()))
                if done():
                    return self._update()
                cursor = self.store.wait(cursor, timeout=0.25)
                time.sleep(0.05)  # coalesce bursts of events into one redraw

    def _follow_plain(self, done: Callable[[], bool], cursor: int) -> dict[str, Any]:
        last_line = ""
        last_time = 0.0
        while True:
            snapshot = self.store.batch(self.batch_id)
            line = summary_line(snapshot)
            now = time.monotonic()
            if line != last_line and now - last_time >= 2.0:
                self.console.print(
                    f"{self.batch_id}  {line}  {_eta_text(snapshot)}", highlight=False
                )
                last_line, last_time = line, now
            if done():
                return self.store.batch(self.batch_id)
            cursor = self.store.wait(cursor, timeout=1.0)


def run_in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start `target` on a thread; the dict gets "result" or "error" when it ends."""
    outcome: dict[str, Any] = {}

    def body() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="sheetbatch-batch", daemon=True)
    thread.start()
    return thread, outcome
