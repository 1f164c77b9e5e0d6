"""The terminal progress view: one more reader of the log, drawn with rich."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Column, Table

from progress import BatchSnapshot, JobStatus, Store
from sheets_integration.selection import rows_text


def _eta_text(snapshot: BatchSnapshot) -> str:
    eta = snapshot["eta_seconds"]
    if eta is None:
        return "ETA --:--"
    minutes, seconds = divmod(round(eta), 60)
    return f"ETA {minutes:d}:{seconds:02d}"


def done_text(snapshot: BatchSnapshot) -> str:
    """ "24 of 200 rows done (12%)": rows that ran to an end; cancelled rows are not done.

    The percentage is rounded down, so it never says 100% before every row is done.
    """
    c = snapshot["counts"]
    done = c["succeeded"] + c["failed"]
    total = snapshot["total"]
    percent = 100 * done // total if total else 100
    return f"{done} of {rows_text(total)} done ({percent}%)"


def summary_line(snapshot: BatchSnapshot) -> str:
    """One line of counts: "12 of 50 rows done (24%) · succeeded 10 · failed 2 · running 8"."""
    return " · ".join(count_phrases(snapshot))


def count_phrases(snapshot: BatchSnapshot) -> list[str]:
    """The phrases of `summary_line`: done, succeeded, failed, then the other non-zero counts."""
    c = snapshot["counts"]
    phrases = [done_text(snapshot), f"succeeded {c['succeeded']}", f"failed {c['failed']}"]
    others = (("running", c["running"]), ("queued", c["queued"]), ("cancelled", c["cancelled"]))
    phrases += [f"{name} {n}" for name, n in others if n]
    return phrases


def fit(phrases: Sequence[str], width: int, *, lead: str = "", indent: str = "  ") -> list[str]:
    """`lead` then `phrases` joined by " · ", in lines of at most `width` columns.

    No phrase is ever split across lines: a line breaks only between phrases, and
    continuation lines start with `indent`. A phrase longer than a line gets one of its own.
    """
    lines: list[str] = []
    current = lead
    joiner = " " if lead else ""
    for phrase in phrases:
        candidate = f"{current}{joiner}{phrase}"
        if current.strip() and cell_len(candidate) > width:
            lines.append(current)
            candidate = indent + phrase
        current = candidate
        joiner = " · "
    if current:
        lines.append(current)
    return lines


class BatchView:
    """Follows a batch in the terminal until `done()` says stop; redraws on every new event."""

    def __init__(
        self, store: Store, batch_id: str, console: Console, *, active_rows: int = 8
    ) -> None:
        self.store = store
        self.batch_id = batch_id
        self.console = console
        self.active_rows = active_rows
        # Text columns never wrap: on a narrow terminal the bar shrinks instead.
        self.progress = Progress(
            TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[done]}", table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[counts]}", table_column=Column(no_wrap=True)),
            TextColumn("{task.fields[eta]}", table_column=Column(no_wrap=True)),
            console=console,
            expand=True,
        )
        self.task = self.progress.add_task(batch_id, total=1, done="", counts="", eta="")

    @property
    def width(self) -> int:
        """The columns a line may take."""
        return max(40, self.console.width)

    def _active_table(self) -> Table:
        table = Table(show_header=True, header_style="dim", box=None, expand=True)
        table.add_column("row", justify="right", width=6)
        table.add_column("company", ratio=2, no_wrap=True)
        table.add_column("phase", ratio=1, no_wrap=True)
        table.add_column("", ratio=2, no_wrap=True)
        for job in self.store.jobs(
            batch_id=self.batch_id, statuses=[JobStatus.RUNNING], limit=self.active_rows
        ):
            phase = job["phase"]
            where = f"{phase['index']}/{phase['count']} {phase['name']}" if phase else "starting"
            table.add_row(
                str(job["row"]), job["label"] or job["job_id"], where, job["message"] or ""
            )
        return table

    def _update(self) -> BatchSnapshot:
        snapshot = self.store.batch(self.batch_id)
        c = snapshot["counts"]
        done = c["succeeded"] + c["failed"]
        self.progress.update(
            self.task,
            total=max(1, snapshot["total"]),
            completed=done,
            done=f"{done}/{snapshot['total']}",
            counts=f"✓ {c['succeeded']}  ✗ {c['failed']}  ▶ {c['running']}  … {c['queued']}"
            + (f"  ⊘ {c['cancelled']}" if c["cancelled"] else ""),
            eta=_eta_text(snapshot),
        )
        return snapshot

    def follow(self, done: Callable[[], bool]) -> BatchSnapshot:
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

    def _follow_plain(self, done: Callable[[], bool], cursor: int) -> BatchSnapshot:
        last_line = ""
        last_time = 0.0
        while True:
            snapshot = self.store.batch(self.batch_id)
            line = summary_line(snapshot)
            now = time.monotonic()
            if line != last_line and now - last_time >= 2.0:
                for text in fit([*count_phrases(snapshot), _eta_text(snapshot)], self.width):
                    self.console.print(text, highlight=False, soft_wrap=True)
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
