"""Slack's incoming-webhook message format for a notification.

One summary line (the `text`, which Slack also shows in notifications) and, in Block Kit
sections, the first failed rows. Within Slack's limits: a section's text is at most 3,000
characters and a message at most 50 blocks; longer text is cut with an ellipsis.
"""

from __future__ import annotations

from typing import Any

SECTION_LIMIT = 3000
ROWS_SHOWN = 20


def _cut(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(text: str) -> str:
    # Slack's mrkdwn control characters (api.slack.com/reference/surfaces/formatting#escaping).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary(message: dict[str, Any]) -> str:
    """The one summary line of a notification."""
    kind = str(message.get("type", ""))
    data: dict[str, Any] = message.get("data") or {}
    if kind.startswith("batch."):
        counts = data.get("counts") or {}
        text = (
            f"Batch {data.get('batch_id')} {data.get('status')} ({kind}): "
            f"{data.get('total', 0)} rows, {counts.get('succeeded', 0)} succeeded, "
            f"{counts.get('failed', 0)} failed"
            + (f", {counts['cancelled']} cancelled" if counts.get("cancelled") else "")
            + f" in {data.get('elapsed', 0)} s; sheet {data.get('sheet')}"
        )
    elif kind == "schedule.tick_failed":
        text = (
            f"Schedule {data.get('schedule') or data.get('schedule_id')}: the tick due "
            f"{data.get('scheduled_for')} could not run ({data.get('reason')}: "
            f"{data.get('detail')})"
        )
    else:
        text = (
            f"Schedule {data.get('schedule') or data.get('schedule_id')}: "
            f"{data.get('missed')} due times missed ({data.get('first')} to {data.get('last')})"
        )
    return _escape(text)


def slack_message(message: dict[str, Any]) -> dict[str, Any]:
    """The Slack message (`text` plus `blocks`) for a webhook payload."""
    data: dict[str, Any] = message.get("data") or {}
    line = summary(message)
    link = data.get("url")
    head = f"{line}\n<{link}|Open the batch>" if link else line
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(head)}}
    ]
    failed = list(data.get("failed_rows") or [])[:ROWS_SHOWN]
    if failed:
        rows = "\n".join(
            f"• row {r.get('row')} {_escape(str(r.get('label') or ''))}: "
            f"{_escape(str(r.get('error') or ''))}"
            for r in failed
        )
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut("*Failed rows*\n" + rows)}}
        )
    return {"text": _cut(line), "blocks": blocks}
