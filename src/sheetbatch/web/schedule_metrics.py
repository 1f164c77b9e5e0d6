"""The schedulers' figures for `/metrics`: ticks by state and reason, the leader lease."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric

from progress import Store
from progress.schedule_model import TickState


@dataclass(frozen=True)
class ScheduleFigures:
    """What the store says about schedules and their schedulers, read at one scrape."""

    ticks: Mapping[tuple[str, str], int]
    """Ticks by (state, reason or "")."""
    active: int
    paused: int
    leading: bool
    epoch: int
    heartbeat_age: float
    """Seconds since the leader's last heartbeat; -1 when no scheduler ever led."""
    schedulers: int

    @classmethod
    def read(cls, store: Store) -> ScheduleFigures:
        """The figures as the store has them now (blocking reads: call it off the loop)."""
        from sheetbatch.scheduler import LEADER_LEASE, MEMBER_PREFIX

        now = store.clock()
        schedules = store.schedules()
        lease = store.lease(LEADER_LEASE)
        return cls(
            ticks=store.tick_counts(),
            active=sum(not s.paused for s in schedules),
            paused=sum(s.paused for s in schedules),
            leading=lease is not None and lease.held(now),
            epoch=lease.epoch if lease is not None else 0,
            heartbeat_age=round(max(0.0, now - lease.renewed), 3) if lease is not None else -1.0,
            schedulers=sum(m.held(now) for m in store.leases_like(MEMBER_PREFIX)),
        )

    def families(self) -> Iterator[Metric]:
        """The metric families (Prometheus names unchanged since they were hand-written)."""
        ticks = GaugeMetricFamily(
            "sheetbatch_schedule_ticks",
            "Ticks in the store by state and reason.",
            labels=["state", "reason"],
        )
        for (state, reason), n in sorted(self.ticks.items()) or [
            ((TickState.SUCCEEDED.value, ""), 0)
        ]:
            ticks.add_metric([state, reason], n)
        yield ticks
        schedules = GaugeMetricFamily(
            "sheetbatch_schedules",
            "Schedules in the store, by whether they are paused.",
            labels=["paused"],
        )
        schedules.add_metric(["false"], self.active)
        schedules.add_metric(["true"], self.paused)
        yield schedules
        yield GaugeMetricFamily(
            "sheetbatch_scheduler_leader",
            "1 while a scheduler holds the leader lease.",
            value=int(self.leading),
        )
        yield GaugeMetricFamily(
            "sheetbatch_scheduler_leader_epoch",
            "The leader lease's epoch (it grows on every takeover).",
            value=self.epoch,
        )
        yield GaugeMetricFamily(
            "sheetbatch_scheduler_heartbeat_age_seconds",
            "Seconds since the leader's last heartbeat (-1: no leader ever).",
            value=self.heartbeat_age,
        )
        yield GaugeMetricFamily(
            "sheetbatch_schedulers",
            "Scheduler processes alive (member leases held).",
            value=self.schedulers,
        )
