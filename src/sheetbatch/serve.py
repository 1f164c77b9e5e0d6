"""`sheetbatch serve`: the web app on gevent's WSGI server; batches run in worker processes.

Why gevent: every open event stream is a parked greenlet waiting on the process's one log
feed (a few kB), not an OS thread and not a database connection, so one process holds
hundreds of streams. gevent must patch the standard library before anything else imports
it (psycopg picks its wait function at import; SQLAlchemy's pool and the log feed use
`threading`), so the `serve` command re-executes the interpreter as
`python -m sheetbatch.serve ...`, whose first statement patches. Batch work never runs here:
each batch runs in a supervised worker process (`sheetbatch.worker`, see `web/runner.py`),
and the server's own blocking store work runs in gevent's OS-thread pool (`web/offload.py`),
so a CPU-bound pipeline cannot freeze the streams or `/healthz`.

Connections: a client has `[server] header_timeout` seconds to send its request headers
(and that long idle between keep-alive requests); at most `[server] max_connections` are
open at once (capped below the open-file limit, whose soft value is raised to the hard one
at start), and one beyond that is answered 503 at once.

Schedules: unless `--no-scheduler`, the server also supervises a `sheetbatch scheduler`
child process (`scheduler_process.py`: restarted with backoff, dies with the server); tick
batches run in that process, not in the workers.

SIGTERM (or Ctrl-C) shuts down in order: stop accepting connections; stop the scheduler
child and cancel the batches the workers run (queued rows at once, running rows at their
next phase), side by side, and wait up to `--shutdown-timeout` for them to record their last
transition and flush their sheets; end every stream; stop the server; close the store.
"""

if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()

import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sheetbatch.cli_errors import CommandError
from sheetbatch.config import ConfigError, Settings, load_settings
from sheetbatch.web.auth import bind_refusal

# Under `python -m sheetbatch.serve` this module is __main__; its log lines keep its name.
log = logging.getLogger("sheetbatch.serve" if __name__ == "__main__" else __name__)

DEFAULT_SHUTDOWN_TIMEOUT = 25.0


class BadServeInput(CommandError):
    """A setting that keeps the server from starting (exit code 2)."""


def _server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--host",
            help="Address to listen on (default 127.0.0.1; beyond "
            "loopback needs SHEETBATCH_API_TOKEN).",
        ),
        click.option(
            "--port",
            type=click.IntRange(0, 65535),
            help="Port to listen on (default 8000; 0 picks a free one).",
        ),
        click.option("--db", help="Progress store URL (sqlite:///path or postgresql://…)."),
        click.option(
            "--allow-host",
            "allow_host",
            multiple=True,
            help="Let the fetcher reach this private/loopback HOST[:PORT] or CIDR "
            "(repeatable; also SHEETBATCH_ALLOW_HOSTS).",
        ),
        click.option(
            "--concurrency", type=click.IntRange(1, 512), help="Rows processed at once per batch."
        ),
        click.option(
            "--ping-interval",
            type=click.FloatRange(0.05, 3600),
            help="Seconds between heartbeats on event streams (default 15).",
        ),
        click.option(
            "--sheet-dir",
            "sheet_dir",
            multiple=True,
            help="A directory whose .csv/.xlsx files the API and dashboard may use "
            "(repeatable; also [server] sheet_dirs; default: none, Google Sheets only).",
        ),
        click.option(
            "--executor",
            type=click.Choice(["local", "celery"]),
            help="Where submitted batches' rows run (celery: `sheetbatch worker` processes).",
        ),
        click.option("--broker", help="The Celery broker URL (amqp://…) for --executor celery."),
        click.option(
            "--no-scheduler",
            is_flag=True,
            default=False,
            help="Do not run a scheduler (schedules then need `sheetbatch scheduler`).",
        ),
        click.option(
            "--shutdown-timeout",
            type=click.FloatRange(0, 3600),
            default=DEFAULT_SHUTDOWN_TIMEOUT,
            show_default=True,
            help="Seconds SIGTERM waits for running batches to stop.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(config_files: list[Path] | None, opts: dict[str, Any]) -> Settings:
    overrides = {
        "host": opts.get("host"),
        "port": opts.get("port"),
        "db": opts.get("db"),
        "concurrency": opts.get("concurrency"),
        "ping_interval": opts.get("ping_interval"),
        "executor": opts.get("executor"),
        "broker_url": opts.get("broker"),
    }
    try:
        settings = load_settings(config_files=config_files, overrides=overrides)
        if opts.get("allow_host"):
            overrides["allow_hosts"] = (*settings.allow_hosts, *opts["allow_host"])
        if opts.get("sheet_dir"):
            overrides["sheet_dirs"] = (*settings.sheet_dirs, *opts["sheet_dir"])
        settings = load_settings(config_files=config_files, overrides=overrides)
    except ConfigError as exc:
        raise BadServeInput(str(exc)) from exc
    if settings.executor == "celery" and settings.db.startswith("sqlite"):
        raise BadServeInput(
            "executor celery needs a PostgreSQL store (--db postgresql://…): workers in other "
            "processes and on other machines share it; a SQLite file is one machine's"
        )
    refusal = bind_refusal(settings.host, settings.api_token)
    if refusal is not None:
        raise BadServeInput(refusal)
    for directory in settings.sheet_dirs:
        if not Path(directory).expanduser().is_dir():
            raise BadServeInput(f"sheet directory {directory!r} is not a directory")
    return settings


def _child_argv(config_files: list[Path] | None, verbose: int, opts: dict[str, Any]) -> list[str]:
    argv = [sys.executable, "-m", "sheetbatch.serve"]
    for path in config_files or []:
        argv += ["--config", str(path)]
    argv += ["-v"] * verbose
    names = ("host", "port", "db", "concurrency", "ping_interval", "shutdown_timeout")
    for name in (*names, "executor", "broker"):
        value = opts.get(name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    for host in opts.get("allow_host") or ():
        argv += ["--allow-host", host]
    for directory in opts.get("sheet_dir") or ():
        argv += ["--sheet-dir", str(Path(directory).expanduser().resolve())]
    if opts.get("no_scheduler"):
        argv.append("--no-scheduler")
    return argv


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("socket"))


def _verbosity() -> int:
    level = logging.getLogger().getEffectiveLevel()
    return 0 if level >= logging.WARNING else 1 if level >= logging.INFO else 2


@click.command("serve")
@_server_options
@click.pass_context
def serve_command(ctx: click.Context, /, **opts: Any) -> None:
    """Serve the dashboard, the REST API and live event streams; run submitted batches."""
    config_files = (ctx.obj or {}).get("config_files")
    _settings(config_files, opts)  # refuse bad settings here, with the CLI's own output
    if _gevent_patched():
        # Already patched (a test's own process): no scheduler child.
        sys.exit(run_server(_settings(config_files, opts), opts["shutdown_timeout"]))
    argv = _child_argv(config_files, _verbosity(), opts)
    sys.stdout.flush()
    sys.stderr.flush()
    # Same pid: a supervisor's SIGTERM reaches the server itself.
    os.execv(sys.executable, argv)


@click.command("sheetbatch-serve")
@click.option(
    "--config",
    "config_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Config file(s) read instead of config/*.toml.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@_server_options
def main(config_files: tuple[Path, ...], verbose: int, **opts: Any) -> None:
    """The server process itself (`python -m sheetbatch.serve`, gevent-patched)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("pipeline.job").setLevel(max(level, logging.WARNING))
    if not _gevent_patched():
        raise BadServeInput("run the server through `sheetbatch serve` (gevent must patch first)")
    settings = _settings(list(config_files) or None, opts)
    from sheetbatch.scheduler_process import scheduler_argv

    child = None
    if not opts.get("no_scheduler"):
        child = scheduler_argv(
            settings.db,
            config_files=list(config_files),
            verbose=verbose,
            allow_hosts=settings.allow_hosts,
            shutdown_timeout=opts["shutdown_timeout"],
        )
    sys.exit(run_server(settings, opts["shutdown_timeout"], scheduler=child))


def run_server(
    settings: Settings,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    *,
    scheduler: list[str] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT, then shut down in order; the exit code.

    `scheduler`: the command line of a scheduler child to supervise (None: none).
    """
    import gevent
    from gevent.event import Event

    from sheetbatch.web import close_app, create_app, shutdown_app, web_context
    from sheetbatch.web.wsgi import connection_cap, make_server, raise_open_file_limit

    # Store work runs in threads (web/offload.py) beside the loop: hand the GIL back to the
    # loop after 1 ms rather than 5, so streams wait less behind a thread's Python.
    sys.setswitchinterval(0.001)
    before, open_files = raise_open_file_limit()
    cap = connection_cap(settings.max_connections, open_files)
    try:
        app = create_app(settings)
    except Exception as exc:
        raise BadServeInput(f"cannot open the progress store: {exc}") from exc
    server = make_server(
        app,
        settings.host,
        settings.port,
        max_connections=cap,
        header_timeout=settings.header_timeout,
    )
    web_context(app).metrics.connection_stats = server.stats
    try:
        server.start()
    except OSError as exc:
        close_app(app)
        raise BadServeInput(f"cannot listen on {settings.host}:{settings.port}: {exc}") from exc
    host = settings.host if ":" not in settings.host else f"[{settings.host}]"
    raised = f" (raised from {before})" if open_files != before else ""
    log.info("open-file limit %d%s", open_files, raised)
    click.echo(
        f"at most {cap} connections at once (open-file limit {open_files}{raised})", err=True
    )
    click.echo(f"sheetbatch serving on http://{host}:{server.server_port}/", err=True)
    if settings.api_token:
        click.echo(
            "API token required (Authorization: Bearer, or sign in on the dashboard)", err=True
        )
    done = Event()
    state = {"stopping": False, "clean": True}
    from sheetbatch.scheduler_process import SchedulerProcess

    child = SchedulerProcess(scheduler) if scheduler else None
    if child is not None:
        child.start()
    # The outbox is sent from here too (with or without a scheduler child): a greenlet whose
    # webhook requests wait on the loop, its store calls in the thread pool.
    from sheetbatch.notifier import notifier_for
    from sheetbatch.web.offload import offload

    notifier = notifier_for(web_context(app).store, settings, db=offload)
    notifier.start()
    # Finished batches are compacted once `[store] compact_after` passed, under a lease.
    from sheetbatch.compactor import Compactor

    compactor = Compactor(web_context(app).store, compact_after=settings.compact_after, db=offload)
    compactor.start()

    def stop() -> None:
        log.warning(
            "shutting down: stopping the scheduler, cancelling running batches, closing streams"
        )
        server.close()
        notifier.stop()
        compactor.stop()
        # The scheduler child and the batch workers stop side by side, within the same
        # --shutdown-timeout: each finishes its own rows and flushes its own sheets.
        scheduler_stopped = gevent.spawn(child.stop, shutdown_timeout) if child else None
        clean = shutdown_app(app, timeout=shutdown_timeout)
        if scheduler_stopped is not None:
            # child.stop kills what did not stop in time; this bound is never reached.
            scheduler_stopped.join(shutdown_timeout + 10)
            clean = bool(scheduler_stopped.value) and clean
        state["clean"] = clean
        server.stop(timeout=3)
        close_app(app)
        done.set()

    def on_signal() -> None:
        if state["stopping"]:
            log.error("second signal: exiting now; running rows resume on the next run")
            os._exit(130)
        state["stopping"] = True
        gevent.spawn(stop)

    gevent.signal_handler(signal.SIGTERM, on_signal)
    gevent.signal_handler(signal.SIGINT, on_signal)
    done.wait()
    click.echo(
        "sheetbatch server stopped"
        + ("" if state["clean"] else " (some rows left running; they resume on the next run)"),
        err=True,
    )
    return 0 if state["clean"] else 1


if __name__ == "__main__":
    main(prog_name="sheetbatch serve")
