"""The scheduler: exactly one leader among any number of processes turns due times into ticks.

Every scheduler process keeps a member lease (it is alive) and tries for the leader lease
(`scheduler.leader`, TTL `[scheduler] lease_seconds`); the leader renews it by heartbeat, the
others stand by and take over when it expires (kill -9 included). Each pass of the leader:

1. reconcile: start a queued tick whose schedule has no run going; finish a running tick
   whose scheduler died (`TickRunner.finish_orphan`: resume its batch, never a second one);
2. plan: `plan_ticks` (pure) for every schedule at `now`;
3. record: the planned tick rows and the schedule's cursor in one transaction fenced by the
   leader's epoch, so a stale leader records nothing;
4. execute each new running tick on a worker thread (`TickRunner.execute`).

The timer (APScheduler, `timer.py`) wakes the loop at due times; the loop also wakes every
poll interval. `run_pass()` and `elect()` are the steps; `start()`/`stop()` the runtime.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.runner import short_reason
from progress import BatchStatus, Store
from progress.errors import IllegalTickTransition, NotLeader, ProgressError, UnknownBatch
from progress.owners import new_owner
from progress.schedule_model import (
    Fence,
    ScheduleRow,
    TickReason,
    TickRow,
    TickState,
    tick_batch_id,
)
from sheetbatch.config import Settings
from sheetbatch.launcher import InProcessLauncher
from sheetbatch.planner import PlanPolicy, plan_ticks
from sheetbatch.service import notify_targets
from sheetbatch.tick_runner import TickRunner
from sheetbatch.timer import Timer
from sheetbatch.timetable import TriggerError, trigger_from_json

log = logging.getLogger(__name__)

LEADER_LEASE = "scheduler.leader"
MEMBER_PREFIX = "scheduler.member:"


class Scheduler:
    """One scheduler process's part: leadership, passes, and the ticks it executes."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        launcher: InProcessLauncher | None = None,
        owner: str | None = None,
        threaded: bool = True,
        workers: int = 4,
    ) -> None:
        self.store = store
        self.settings = settings
        self.owner = owner or new_owner()
        self.launcher = launcher or InProcessLauncher(store, settings)
        self.runner = TickRunner(store, settings, self.launcher, owner=self.owner)
        self.policy = PlanPolicy(
            grace=settings.misfire_grace, catchup_window=settings.catchup_window
        )
        self.ttl = settings.scheduler_lease_seconds
        self.guard: Fence | None = None
        self._lock = threading.Lock()
        self._in_flight: set[str] = set()
        self._executor = ThreadPoolExecutor(workers, "sheetbatch-tick") if threaded else None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._timer = Timer(self._wake.set) if threaded else None
        self._version: tuple[int, float] | None = None
        self._bad_triggers: set[str] = set()

    @property
    def member_lease(self) -> str:
        return MEMBER_PREFIX + self.owner

    @property
    def is_leader(self) -> bool:
        return self.guard is not None

    # ------------------------------------------------------------------ leadership
    def elect(self) -> bool:
        """Heartbeat: renew this process's member lease, and renew or try for leadership."""
        self.store.acquire_lease(self.member_lease, self.owner, self.ttl)
        if self.guard is not None:
            epoch = self.store.renew_lease(LEADER_LEASE, self.owner, self.ttl)
            if epoch != self.guard.epoch:
                self._lose("the lease was taken over")
            return self.is_leader
        if self._stopping.is_set():
            return False
        epoch = self.store.acquire_lease(LEADER_LEASE, self.owner, self.ttl)
        if epoch is not None:
            self.guard = Fence(LEADER_LEASE, self.owner, epoch)
            self._version = None
            log.warning("scheduler %s leads (epoch %d)", self.owner, epoch)
            self._wake.set()
        return self.is_leader

    def _lose(self, why: str) -> None:
        if self.guard is not None:
            log.warning(
                "scheduler %s no longer leads (epoch %d): %s", self.owner, self.guard.epoch, why
            )
        self.guard = None
        if self._timer is not None:
            self._timer.clear()

    # ------------------------------------------------------------------ one pass
    def run_pass(self) -> list[TickRow]:
        """As leader: reconcile, plan, record and execute what is due now; the ticks created."""
        guard = self.guard
        if guard is None:
            return []
        try:
            return self._pass(guard)
        except NotLeader as exc:
            self._lose(str(exc))
            return []

    def _pass(self, guard: Fence) -> list[TickRow]:
        schedules = {s.schedule_id: s for s in self.store.schedules()}
        version = self.store.schedules_version()
        if version != self._version and self._timer is not None:
            self._timer.sync(schedules.values())
        self._version = version
        self._reconcile(schedules, guard)
        now = self.store.clock()
        active: dict[str, list[TickRow]] = {}
        for tick in self.store.active_ticks():
            active.setdefault(tick.schedule_id, []).append(tick)
        created: list[TickRow] = []
        for schedule in schedules.values():
            try:
                trigger = trigger_from_json(schedule.trigger)
            except TriggerError as exc:
                if schedule.schedule_id not in self._bad_triggers:
                    log.error("schedule %s: unusable trigger: %s", schedule.schedule_id, exc)
                    self._bad_triggers.add(schedule.schedule_id)
                continue
            plan = plan_ticks(
                schedule, trigger, now, active.get(schedule.schedule_id, []), self.policy
            )
            if not plan.ticks and plan.cursor <= schedule.cursor:
                continue
            if plan.dropped:
                log.warning(
                    "schedule %s: %d+ due times older than the look-back were not recorded",
                    schedule.schedule_id,
                    plan.dropped,
                )
            made = self.store.record_ticks(
                schedule.schedule_id,
                plan.ticks,
                scheduler=self.owner,
                guard=guard,
                cursor=plan.cursor,
                notify=notify_targets(self.settings),
            )
            created.extend(made)
            for tick in made:
                if tick.state is TickState.RUNNING:
                    self._dispatch(tick, self.runner.execute, tick, schedule, guard)
        return created

    def _reconcile(self, schedules: dict[str, ScheduleRow], guard: Fence) -> None:
        now = self.store.clock()
        for member in self.store.leases_like(MEMBER_PREFIX):
            if member.expires < now - 10 * self.ttl:
                self.store.drop_lease(member.name)  # a scheduler long gone
        active = self.store.active_ticks()
        running = {t.schedule_id for t in active if t.state is TickState.RUNNING}
        for tick in active:
            schedule = schedules.get(tick.schedule_id)
            if schedule is None:
                continue
            if tick.state is TickState.QUEUED:
                if tick.schedule_id not in running:
                    started = self.store.start_queued_tick(
                        tick.tick_id, scheduler=self.owner, guard=guard
                    )
                    running.add(tick.schedule_id)
                    self._dispatch(started, self.runner.execute, started, schedule, guard)
                continue
            if self._alive(tick):
                continue
            self._dispatch(
                tick,
                self.runner.finish_orphan,
                tick,
                schedule,
                guard,
                launch_within=self.settings.catchup_window,
            )

    def _alive(self, tick: TickRow) -> bool:
        """Whether the scheduler that claimed a running tick still looks after it.

        A live claimer that lost the lead is trusted with a batch it runs (the batch's end
        finishes the tick); a tick of it without a batch is adopted once it has not moved
        for two lease periods (its claimer's fenced writes are refused by now).
        """
        with self._lock:
            if tick.tick_id in self._in_flight:
                return True
        batch_id = tick.batch_id or tick_batch_id(tick.tick_id)
        if tick.scheduler == self.owner:
            return self.launcher.is_running(batch_id)
        member = self.store.lease(MEMBER_PREFIX + tick.scheduler)
        now = self.store.clock()
        if member is None or not member.held(now):
            return False
        try:
            running = self.store.batch(batch_id)["status"] is BatchStatus.RUNNING
        except UnknownBatch:
            return now - tick.updated < 2 * self.ttl
        return running

    def _dispatch(self, tick: TickRow, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        with self._lock:
            if tick.tick_id in self._in_flight:
                return
            self._in_flight.add(tick.tick_id)
        if self._executor is None:
            self._guarded(tick, fn, args, kwargs)
        else:
            self._executor.submit(self._guarded, tick, fn, args, kwargs)

    def _guarded(
        self, tick: TickRow, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        try:
            fn(*args, **kwargs)
        except NotLeader as exc:
            self._lose(str(exc))
        except Exception as exc:
            # A loop boundary: the tick ends `failed`/`error` with the reason, never silently.
            log.exception("tick %s failed unexpectedly", tick.tick_id)
            try:
                self.store.finish_tick(
                    tick.tick_id,
                    TickState.FAILED,
                    TickReason.ERROR,
                    f"internal error: {short_reason(exc)}",
                    guard=self.guard,
                    pause_after=self.settings.pause_after_failures,
                    notify=notify_targets(self.settings),
                )
            except (IllegalTickTransition, ProgressError):
                log.exception("tick %s: could not record its failure", tick.tick_id)
        finally:
            with self._lock:
                self._in_flight.discard(tick.tick_id)

    # ------------------------------------------------------------------ runtime
    def start(self) -> None:
        """Start the heartbeat, the loop and the timer threads."""
        if self._timer is not None:
            self._timer.start()
        for name, target in (("elector", self._elector), ("loop", self._loop)):
            thread = threading.Thread(
                target=target, name=f"sheetbatch-scheduler-{name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _elector(self) -> None:
        interval = max(0.05, self.ttl / 10)
        while not self._stopping.is_set():
            try:
                self.elect()
            except Exception:
                # A loop boundary: the store may be briefly unavailable; the lease decides.
                log.exception("scheduler heartbeat failed")
            self._stopping.wait(interval)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.settings.scheduler_poll_interval)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self.run_pass()
            except Exception:
                log.exception("scheduler pass failed")

    def stop(self, timeout: float = 25.0) -> bool:
        """Stop: no new tick, leadership released (a standby takes over at once), running
        batches cancelled and flushed. True when they all ended within `timeout`."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._timer is not None:
            self._timer.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        clean = self.launcher.shutdown(timeout)
        try:
            if self.guard is not None:
                self.store.release_lease(LEADER_LEASE, self.owner)
            self.store.drop_lease(self.member_lease)
        except ProgressError:
            log.exception("could not release the scheduler's leases")
        self.guard = None
        self.runner.reader.close()
        return clean
