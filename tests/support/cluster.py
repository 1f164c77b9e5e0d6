"""A cluster on one machine: RabbitMQ vhosts, `sheetbatch worker` subprocesses.

RabbitMQ tests skip with a reason when the broker is absent on a laptop; under CI=true a
missing broker is a failure, never a skip (`need_service`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from progress import Store
from tests.support.cli import cli_env
from tests.support.databases import need_service

RABBIT = ("127.0.0.1", 5672)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def rabbit_vhost() -> Iterator[str]:
    """A broker URL on a fresh vhost, deleted afterwards."""
    try:
        socket.create_connection(RABBIT, timeout=2).close()
    except OSError as exc:
        need_service("RabbitMQ at 127.0.0.1:5672", str(exc))
    if shutil.which("rabbitmqctl") is None:
        need_service("rabbitmqctl", "not on PATH")
    vhost = "sb_" + secrets.token_hex(5)
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


def close_broker_connections() -> None:
    """Close every client connection of the broker (what a broker restart does to clients)."""
    _rabbitmqctl("close_all_connections", "test: connection loss")


def terminate_backends(application_name: str) -> int:
    """pg_terminate_backend every connection carrying this application_name; how many."""
    from tests.support.databases import admin_connection

    with admin_connection() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def start_worker(
    db: str,
    broker: str,
    *,
    name: str,
    cwd: Path,
    concurrency: int = 4,
    log: Path | None = None,
    **env: str,
) -> subprocess.Popen[bytes]:
    """`sheetbatch worker` in its own session (so kill -9 hits only it)."""
    with (log or cwd / f"{name}.log").open("ab") as out:  # the child keeps its own copy
        return _popen(db, broker, name=name, cwd=cwd, concurrency=concurrency, out=out, env=env)


def _popen(
    db: str,
    broker: str,
    *,
    name: str,
    cwd: Path,
    concurrency: int,
    out: BinaryIO,
    env: dict[str, str],
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sheetbatch",
            "-v",
            "worker",
            "--db",
            db,
            "--broker",
            broker,
            "--concurrency",
            str(concurrency),
            "--name",
            name,
        ],
        cwd=cwd,
        env=cli_env(**env),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(*processes: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM (a warm shutdown) to all at once, then SIGKILL to any that lingers."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGCONT)
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_for(condition: Callable[[], object], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


def wait_registered(store: Store, name: str, timeout: float = 30) -> None:
    """Wait until the worker started with `--name name` is registered and alive."""
    wait_for(
        lambda: any(w.owner.endswith(f":{name}") and w.alive for w in store.workers()),
        timeout,
        f"worker {name!r} to register",
    )
