"""Notifications from the command line, in real subprocesses: `run --notify` delivers
before it exits, survives kill -9 between recording and delivery (`notify send` delivers it
with the same webhook-id), `notify deliveries` lists every attempt, `notify redeliver` sends
one again; a webhook URL on a private address is refused unless allowed."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import standardwebhooks

from tests.support.cli import read_csv, sheetbatch, start_sheetbatch, write_csv
from tests.support.receiver import Receiver

QUICK = "tests.support.pipelines:formula"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _sheet(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "leads.csv",
        ["Company", "Website"],
        [["Acme", "https://acme.test"], ["Initech", "https://initech.test"]],
    )


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'progress.db'}"


def _run_args(tmp_path: Path, hook: Receiver) -> list[str]:
    return [
        *("run", str(_sheet(tmp_path)), "--pipeline", QUICK, "--db", _db(tmp_path)),
        *("--notify", hook.url, "--allow-host", hook.allow, "--json"),
    ]


def _deliveries(tmp_path: Path, *more: str) -> list[dict[str, object]]:
    listed = sheetbatch(
        ["notify", "deliveries", "--db", _db(tmp_path), "--json", *more], cwd=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def test_a_run_killed_before_its_notification_was_acknowledged_is_delivered_by_notify_send(
    tmp_path: Path,
) -> None:
    hook = Receiver([("hang", 60.0)])  # the first attempt never gets its answer
    try:
        run = start_sheetbatch(
            _run_args(tmp_path, hook),
            cwd=tmp_path,
            SHEETBATCH_WEBHOOK_SECRET=SECRET,
        )
        try:
            hook.wait_for(1, timeout=60)
        finally:
            os.kill(run.pid, signal.SIGKILL)
            run.communicate(timeout=30)
        (pending,) = _deliveries(tmp_path)
        assert pending["state"] == "pending" and pending["attempts"] == []
        sent = sheetbatch(
            ["notify", "send", "--db", _db(tmp_path), "--allow-host", hook.allow],
            cwd=tmp_path,
            SHEETBATCH_WEBHOOK_SECRET=SECRET,
        )
        assert sent.returncode == 0, sent.stderr
        requests = hook.wait_for(2)
    finally:
        hook.close()
    first, second = requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == pending["id"]
    verifier = standardwebhooks.Webhook(SECRET)
    for request in requests:
        assert verifier.verify(request.body, request.headers)["type"] == "batch.completed"
    (delivered,) = _deliveries(tmp_path)
    assert delivered["state"] == "delivered"
    assert [a["status"] for a in delivered["attempts"]] == [200]  # type: ignore[union-attr]


def test_run_delivers_before_it_exits_and_redeliver_sends_it_again(
    tmp_path: Path,
) -> None:
    hook = Receiver()
    try:
        done = sheetbatch(
            _run_args(tmp_path, hook),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        batch_id = json.loads(done.stdout)["batch_id"]
        assert "sent unsigned" in done.stderr  # said once: no secret was set
        assert len(hook.requests) == 1
        (delivery,) = _deliveries(tmp_path, "--batch", batch_id)
        assert delivery["state"] == "delivered" and delivery["url"] == hook.url
        assert delivery["type"] == "batch.completed"
        again = sheetbatch(
            [
                *("notify", "redeliver", str(delivery["id"])),
                "--db",
                _db(tmp_path),
                "--allow-host",
                hook.allow,
            ],
            cwd=tmp_path,
        )
        assert again.returncode == 0, again.stderr
        assert len(hook.requests) == 2
        unknown = sheetbatch(
            ["notify", "redeliver", "msg_nope", "--db", _db(tmp_path)], cwd=tmp_path
        )
    finally:
        hook.close()
    assert hook.requests[1].headers["webhook-id"] == delivery["id"]
    assert hook.requests[0].body == hook.requests[1].body
    assert unknown.returncode == 2 and unknown.stderr.strip().splitlines() == [
        "error: unknown notification 'msg_nope'"
    ]
    (twice,) = _deliveries(tmp_path, "--batch", batch_id)
    assert len(twice["attempts"]) == 2  # type: ignore[arg-type]


def test_a_webhook_on_a_private_address_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    sheet = _sheet(tmp_path)
    before = sheet.read_bytes()
    refused = sheetbatch(
        [
            "run",
            str(sheet),
            "--pipeline",
            QUICK,
            "--db",
            _db(tmp_path),
            "--notify",
            "http://127.0.0.1:9/hook",
        ],
        cwd=tmp_path,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --notify http://127.0.0.1:9/hook: blocked loopback address 127.0.0.1; "
        "allow it with --allow-host or [fetch] allow_hosts"
    ]
    assert sheet.read_bytes() == before and not (tmp_path / "progress.db").exists()
    assert read_csv(sheet)[0]["Company"] == "Acme"
