"""Tables of the notification outbox and of webhook URLs that answered 410 (schema 4), and
the step that adds them.

Kept apart from `schema.py` so the upgrade step is self-contained: it creates exactly these
tables, whichever other steps a database has been through.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Connection, Float, Index, String, Table, Text

from progress.schema import metadata

# One row per (outcome, URL), written in the transaction that records the outcome. A sender
# claims a row (`claim_owner`, `claimed_until`) before an attempt, so two senders never try
# one notification at the same moment; `attempts` is the list of every try.
notifications = Table(
    "sb_notifications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("type", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("state", String(20), nullable=False),
    Column("data", JSON, nullable=False),
    Column("batch_id", String(64), nullable=True),
    Column("schedule_id", String(64), nullable=True),
    Column("tick_id", String(64), nullable=True),
    Column("created", Float, nullable=False),
    # Retries go on until `since` + max_age (a redelivery starts a new `since`).
    Column("since", Float, nullable=False),
    Column("next_attempt", Float, nullable=False),
    Column("attempts", JSON, nullable=False),
    Column("delivered", Float, nullable=True),
    Column("claim_owner", String(200), nullable=True),
    Column("claimed_until", Float, nullable=True),
    Column("updated", Float, nullable=False),
    Index("ix_sb_notifications_due", "state", "next_attempt"),
    Index("ix_sb_notifications_batch", "batch_id", "created"),
)

# A URL that answered 410 Gone: later notifications to it are recorded `disabled`.
disabled_urls = Table(
    "sb_disabled_urls",
    metadata,
    Column("url", String(2000), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("since", Float, nullable=False),
)

TABLES = (notifications, disabled_urls)


def add_notifications(conn: Connection) -> None:
    """The upgrade step that adds the notification outbox to a database without it."""
    for table in TABLES:
        table.create(conn, checkfirst=True)
