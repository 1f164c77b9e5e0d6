"""Recording notifications in the transaction that records their outcome (the outbox).

A batch's last transition, a tick's failure and a pass that found due times missed call
these with their open `Tx`: the notification rows commit with the outcome or not at all, so
a notification exists exactly when its outcome does, whatever process dies when. Rows are
written only for targets that want the event; a URL that answered 410 before gets its row
`disabled` (visible, never sent).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select

from progress import schema as t
from progress.commit import Tx
from progress.notify_model import NotifyEvent, NotifyState, Targets
from progress.notify_tables import disabled_urls, notifications
from progress.schedule_model import TickRow
from progress.schedule_tables import schedules, ticks
from progress.snapshots import iso
from progress.statements import BatchCounts

FAILED_ROWS_SHOWN = 20


def new_notification_id() -> str:
    """A unique notification id: the `webhook-id` of each of its attempts."""
    return "msg_" + secrets.token_hex(12)


def _insert(
    tx: Tx,
    event: NotifyEvent,
    targets: Targets,
    data: Mapping[str, Any],
    *,
    batch_id: str | None = None,
    schedule_id: str | None = None,
    tick_id: str | None = None,
) -> int:
    """One row per URL that wants `event`; how many."""
    if not targets.urls or not targets.wants(event):
        return 0
    gone = set(
        tx.conn.execute(
            select(disabled_urls.c.url).where(disabled_urls.c.url.in_(list(targets.urls)))
        ).scalars()
    )
    rows: list[dict[str, Any]] = [
        {
            "id": new_notification_id(),
            "type": event.value,
            "url": url,
            "state": (NotifyState.DISABLED if url in gone else NotifyState.PENDING).value,
            "data": dict(data),
            "batch_id": batch_id,
            "schedule_id": schedule_id,
            "tick_id": tick_id,
            "created": tx.now,
            "since": tx.now,
            "next_attempt": tx.now,
            "attempts": [],
            "updated": tx.now,
        }
        for url in targets.urls
    ]
    tx.conn.execute(insert(notifications), rows)
    return len(rows)


def batch_event(status: str, counts: BatchCounts) -> NotifyEvent:
    """Which notification a finished batch makes."""
    if status == "cancelled":
        return NotifyEvent.BATCH_CANCELLED
    if counts.n_failed or counts.n_cancelled:
        return NotifyEvent.BATCH_FAILED
    return NotifyEvent.BATCH_COMPLETED


def record_batch_outcome(tx: Tx, batch_id: str, status: str, counts: BatchCounts) -> int:
    """Record the notifications of a batch that just finished (in that transaction): to the
    URLs its options carry (`options["notify"]`, set when it was created)."""
    batch = tx.conn.execute(
        select(
            t.batches.c.sheet,
            t.batches.c.pipeline,
            t.batches.c.options,
            t.batches.c.created,
            t.batches.c.started,
        ).where(t.batches.c.batch_id == batch_id)
    ).one_or_none()
    if batch is None:
        return 0
    targets = Targets.from_json((batch.options or {}).get("notify"))
    event = batch_event(status, counts)
    if not targets.urls or not targets.wants(event):
        return 0
    failed = tx.conn.execute(
        select(t.jobs.c.row, t.jobs.c.label, t.jobs.c.error)
        .where(t.jobs.c.batch_id == batch_id, t.jobs.c.status == "failed")
        .order_by(t.jobs.c.row)
        .limit(FAILED_ROWS_SHOWN)
    ).all()
    tick = tx.conn.execute(
        select(ticks.c.tick_id, ticks.c.schedule_id)
        .where(ticks.c.batch_id == batch_id)
        .order_by(ticks.c.scheduled_for.desc())
        .limit(1)
    ).one_or_none()
    started = float(batch.started if batch.started is not None else batch.created)
    data = {
        "batch_id": batch_id,
        "sheet": batch.sheet,
        "pipeline": batch.pipeline,
        "status": status,
        "total": counts.total,
        "counts": {
            "succeeded": counts.n_succeeded,
            "failed": counts.n_failed,
            "cancelled": counts.n_cancelled,
        },
        "started": iso(started),
        "finished": iso(tx.now),
        "elapsed": round(max(0.0, tx.now - started), 3),
        "failed_rows": [
            {"row": int(r.row), "label": r.label or "", "error": r.error or ""} for r in failed
        ],
        "schedule_id": tick.schedule_id if tick is not None else None,
        "tick_id": tick.tick_id if tick is not None else None,
    }
    return _insert(
        tx,
        event,
        targets,
        data,
        batch_id=batch_id,
        schedule_id=data["schedule_id"],
        tick_id=data["tick_id"],
    )


def _schedule_targets(tx: Tx, schedule_id: str, defaults: Targets | None) -> tuple[Targets, Any]:
    row = tx.conn.execute(
        select(schedules.c.name, schedules.c.sheet, schedules.c.notify).where(
            schedules.c.schedule_id == schedule_id
        )
    ).one_or_none()
    base = defaults or Targets()
    if row is None:
        return base, None
    return base.merged(list(row.notify or [])), row


def record_tick_failure(tx: Tx, tick: TickRow, defaults: Targets | None) -> int:
    """Record `schedule.tick_failed` for a tick that could not run (in its transaction): to
    the schedule's URLs and the configured ones (`defaults`)."""
    targets, schedule = _schedule_targets(tx, tick.schedule_id, defaults)
    data = {
        "schedule_id": tick.schedule_id,
        "schedule": schedule.name if schedule is not None else None,
        "sheet": schedule.sheet if schedule is not None else None,
        "tick_id": tick.tick_id,
        "scheduled_for": iso(tick.scheduled_for),
        "reason": tick.reason.value if tick.reason else None,
        "detail": tick.detail,
    }
    return _insert(
        tx,
        NotifyEvent.TICK_FAILED,
        targets,
        data,
        schedule_id=tick.schedule_id,
        tick_id=tick.tick_id,
    )


def record_missed(
    tx: Tx, schedule_id: str, missed: Sequence[TickRow], defaults: Targets | None
) -> int:
    """Record one `schedule.missed` for the due times one pass found missed (in the
    transaction that records their ticks)."""
    if not missed:
        return 0
    targets, schedule = _schedule_targets(tx, schedule_id, defaults)
    times = sorted(tick.scheduled_for for tick in missed)
    data = {
        "schedule_id": schedule_id,
        "schedule": schedule.name if schedule is not None else None,
        "sheet": schedule.sheet if schedule is not None else None,
        "missed": len(missed),
        "first": iso(times[0]),
        "last": iso(times[-1]),
        "tick_ids": [tick.tick_id for tick in missed][:FAILED_ROWS_SHOWN],
    }
    return _insert(tx, NotifyEvent.MISSED, targets, data, schedule_id=schedule_id)
