"""A process's connection budget on PostgreSQL: `[store] pool_size`, and what its end looks like.

A PostgreSQL server has `max_connections` slots (less `superuser_reserved_connections`) for
every process of a deployment together, so each process is given a fixed number: the most
connections it ever holds to the store, the LISTEN connection included. The engine's pool
holds `pool_size - 1` of them (no overflow beyond: an overflow is a slot like any other), and
the log listener the last one; with `pool_size = 1` there is no LISTEN connection and the
log feed polls the head instead.

Threads that want a connection while all are in use wait for one (`pool_timeout`): a worker
whose `--concurrency` exceeds the budget runs as many rows, its store work queued behind a
few connections. Two ends are told apart, each naming its cause and the setting:

- `StoreBusy`: every connection of this process stayed in use for `pool_timeout` seconds
  (the web answers 503 with Retry-After, never a hang);
- `NoConnectionSlot`: the server refused a new connection for lack of slots ("too many
  clients already", "remaining connection slots are reserved", a CONNECTION LIMIT): the
  processes together ask for more than the server has.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from progress.errors import POOL_SETTING, NoConnectionSlot, StoreBusy

#: Connections one process holds at most: two `serve` (each with its scheduler child), a
#: `scheduler`, two workers and a `run` take 64 of PostgreSQL's default 100 (97 without the
#: superuser's reserve), leaving room for three of `serve`'s batch processes and psql.
DEFAULT_POOL_SIZE = 8
#: Seconds a thread waits for one of its process's connections before giving up.
POOL_TIMEOUT = 10.0

# What PostgreSQL says when it has no slot for a new session (SQLSTATE 53300, which psycopg
# does not report for a connection that never opened) -> the limit that was reached.
_REFUSALS = {
    "too many clients already": "max_connections",
    "remaining connection slots are reserved": "max_connections",
    "too many connections for role": "the role's CONNECTION LIMIT",
    "too many connections for database": "the database's CONNECTION LIMIT",
}


def pooled(pool_size: int) -> int:
    """Connections the engine's pool may open under a budget of `pool_size`."""
    return max(1, pool_size - 1)


def listens(pool_size: int) -> bool:
    """Whether a budget of `pool_size` leaves a connection for LISTEN (one more than the pool).

    An engine without a budget (0) listens, as it always did.
    """
    return pool_size != 1


def budget_of(engine: Engine) -> int:
    """The `pool_size` an engine was made with (0: not a budgeted PostgreSQL engine)."""
    pool = engine.pool
    return pool.budget if isinstance(pool, BudgetPool) else 0


def no_slot_message(error: BaseException, pool_size: int) -> str | None:
    """The user's message when `error` is PostgreSQL refusing a session for lack of slots."""
    text = str(error)
    limit = next((name for phrase, name in _REFUSALS.items() if phrase in text), None)
    if limit is None:
        if getattr(error, "sqlstate", None) != "53300":
            return None
        limit = "max_connections"
    said = (text.partition("FATAL:")[2].strip() or text.strip()).splitlines()[0]
    now = f" (now {pool_size})" if pool_size > 0 else ""
    return (
        f"PostgreSQL has no connection slot left ({limit} reached: {said}): lower "
        f"{POOL_SETTING}{now} in each process, or raise {limit}; the pool sizes of all "
        "processes on one server must add up to at most "
        "max_connections - superuser_reserved_connections"
    )


class BudgetPool(QueuePool):
    """The store's pool on PostgreSQL: a wait past its timeout raises `StoreBusy`."""

    budget = 0  # the process's `pool_size`, set by `budget_pool_args`' caller

    def _do_get(self) -> Any:
        try:
            return super()._do_get()
        except exc.TimeoutError as error:
            raise StoreBusy(
                f"the progress store is busy: all {self.size()} connections this process "
                f"may use ({POOL_SETTING} = {self.budget}) stayed in use for "
                f"{self.timeout():g} s; try again, or raise {POOL_SETTING} where the server "
                "has slots to spare"
            ) from error

    def recreate(self) -> BudgetPool:
        pool = super().recreate()
        assert isinstance(pool, BudgetPool)
        pool.budget = self.budget
        return pool


def budget_pool_args(pool_size: int, pool_timeout: float) -> dict[str, Any]:
    """`create_engine` arguments for a pool within a budget of `pool_size` connections."""
    return {
        "poolclass": BudgetPool,
        "pool_size": pooled(pool_size),
        "max_overflow": 0,
        "pool_timeout": pool_timeout,
    }


def install_budget(engine: Engine, pool_size: int) -> None:
    """Name the budget in the engine's errors: a timeout (`StoreBusy`), a refused session
    (`NoConnectionSlot`)."""
    pool = engine.pool
    if isinstance(pool, BudgetPool):
        pool.budget = pool_size

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        message = no_slot_message(context.original_exception, pool_size)
        if message is not None:
            raise NoConnectionSlot(message) from context.original_exception
