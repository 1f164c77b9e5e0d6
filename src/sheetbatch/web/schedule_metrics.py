"""The schedulers' figures for `/metrics`: ticks by state and reason, the leader lease."""

from __future__ import annotations

from progress import Store
from progress.schedule_model import TickState


def _family(name: str, kind: str, help_text: str, samples: list[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def schedule_lines(store: Store) -> list[str]:
    """Exposition lines (Prometheus text format 0.0.4) read from the store."""
    from sheetbatch.scheduler import LEADER_LEASE, MEMBER_PREFIX

    now = store.clock()
    counts = store.tick_counts()
    ticks = [
        f'sheetbatch_schedule_ticks{{state="{state}",reason="{reason}"}} {n}'
        for (state, reason), n in sorted(counts.items())
    ]
    if not ticks:
        ticks = [f'sheetbatch_schedule_ticks{{state="{TickState.SUCCEEDED}",reason=""}} 0']
    schedules = store.schedules()
    lease = store.lease(LEADER_LEASE)
    leading = lease is not None and lease.held(now)
    members = [m for m in store.leases_like(MEMBER_PREFIX) if m.held(now)]
    lines: list[str] = []
    lines += _family(
        "sheetbatch_schedule_ticks", "gauge", "Ticks in the store by state and reason.", ticks
    )
    lines += _family(
        "sheetbatch_schedules",
        "gauge",
        "Schedules in the store, by whether they are paused.",
        [
            f'sheetbatch_schedules{{paused="false"}} {sum(not s.paused for s in schedules)}',
            f'sheetbatch_schedules{{paused="true"}} {sum(s.paused for s in schedules)}',
        ],
    )
    lines += _family(
        "sheetbatch_scheduler_leader",
        "gauge",
        "1 while a scheduler holds the leader lease.",
        [f"sheetbatch_scheduler_leader {int(leading)}"],
    )
    lines += _family(
        "sheetbatch_scheduler_leader_epoch",
        "gauge",
        "The leader lease's epoch (it grows on every takeover).",
        [f"sheetbatch_scheduler_leader_epoch {lease.epoch if lease else 0}"],
    )
    age = max(0.0, now - lease.renewed) if lease is not None else -1.0
    lines += _family(
        "sheetbatch_scheduler_heartbeat_age_seconds",
        "gauge",
        "Seconds since the leader's last heartbeat (-1: no leader ever).",
        [f"sheetbatch_scheduler_heartbeat_age_seconds {round(age, 3)}"],
    )
    lines += _family(
        "sheetbatch_schedulers",
        "gauge",
        "Scheduler processes alive (member leases held).",
        [f"sheetbatch_schedulers {len(members)}"],
    )
    return lines
