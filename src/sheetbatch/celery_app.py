"""The Celery app: RabbitMQ delivers nudges ("look at job X"); the progress store decides.

A message carries only a job id. Delivery settings make a nudge survive what Celery alone
loses: a durable queue and persistent messages confirmed by the broker (`confirm_publish`),
acknowledged only after the task ran (`task_acks_late`), given back when the worker dies
(`task_reject_on_worker_lost`), one message per worker thread (prefetch 1), no results kept
and no result backend, no canvas, the threads pool (scale by processes). Retries, deadlines
and cancels are the store's and the runner's own, never Celery's countdowns, `time_limit` or
`revoke`. A duplicate or stale nudge is harmless: the claim refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from celery import Celery, bootsteps
from kombu import Exchange, Queue

from sheetbatch.errors import BrokerUnavailable

QUEUE = "sheetbatch.rows"
RUN_ROW = "sheetbatch.run_row"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def create_celery(broker_url: str, *, run_row: Callable[[str], Any] | None = None) -> Celery:
    """The app for `broker_url`. With `run_row` (a worker process) the task is registered;
    without it (a dispatcher) the app only publishes nudges."""
    app = Celery("sheetbatch", broker=broker_url, set_as_current=False)
    exchange = Exchange(QUEUE, type="direct", durable=True)
    app.conf.update(
        task_queues=[Queue(QUEUE, exchange, routing_key=QUEUE, durable=True)],
        task_default_queue=QUEUE,
        task_default_exchange=QUEUE,
        task_default_routing_key=QUEUE,
        task_default_delivery_mode="persistent",
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A row whose task raised is still the store's: ack it (the reconciler re-nudges
        # a job that did not end); never dead-letter or loop on a poison message.
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # A row running when the broker connection drops finishes (its writes are fenced);
        # the redelivered nudge finds its lease live and is dropped.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        enable_utc=True,
    )
    if run_row is not None:
        app.steps["worker"].add(_WakeUp)

        @app.task(name=RUN_ROW, ignore_result=True)  # type: ignore[untyped-decorator]
        def _run_row(job_id: str) -> None:
            run_row(job_id)

    return app


class _WakeUp(bootsteps.StartStopStep):  # type: ignore[misc]
    """Wakes the worker's event loop every half second.

    A warm shutdown (SIGTERM) only sets a flag the loop reads between polls, and with no
    timer due the loop polls for up to 10 s: `sheetbatch worker` would linger that long.
    """

    requires: ClassVar[set[str]] = {"celery.worker.components:Hub"}

    def start(self, worker: Any) -> None:
        if worker.hub is not None:
            worker.hub.call_repeatedly(0.5, _nothing)


def _nothing() -> None:
    return None


def redacted(url: str) -> str:
    """The broker URL without its password, for messages."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


def check_broker(app: Celery, *, timeout: float = 3.0) -> None:
    """Connect to the broker once; BrokerUnavailable naming it when it cannot be reached."""
    url = str(app.conf.broker_url)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=timeout)
    except Exception as exc:
        raise BrokerUnavailable(
            f"the broker {redacted(url)} cannot be reached ({_first_line(exc)}); start "
            "RabbitMQ or point --broker at it"
        ) from exc


def publish(app: Celery, job_ids: Sequence[str]) -> None:
    """Send one nudge per job id, each confirmed by the broker before the next."""
    if not job_ids:
        return
    url = str(app.conf.broker_url)
    try:
        with app.producer_or_acquire() as producer:
            for job_id in job_ids:
                app.send_task(RUN_ROW, args=[job_id], producer=producer, queue=QUEUE)
    except Exception as exc:
        raise BrokerUnavailable(
            f"publishing to the broker {redacted(url)} failed ({_first_line(exc)})"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
