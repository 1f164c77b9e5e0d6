"""The rows a sheet flush writes: the batch's jobs that moved since the writer's cursor,
read from the log a page at a time and handed out in pieces of a bounded size, so a flush
after 500,000 rows moved never holds 500,000 job ids at once.

A job's events may fall into several pieces. It is written once, with the piece that holds
its newest event: every event of a job moves the job's `last_event_id`
(`written_later`)."""

from __future__ import annotations

from collections.abc import Iterator

from progress import Store

#: Events read per query of the log.
_PAGE = 1000


def changed_pieces(
    store: Store, batch_id: str, after: int, until: int, size: int
) -> Iterator[tuple[list[str], int]]:
    """The ids of the batch's jobs with events in (`after`, `until`], at most `size`
    distinct ids a piece (each sorted), with the id of the last event the piece covers.

    Bounding by `until` (the log head when the flush began) keeps a flush from chasing
    events appended while it writes: those are the next flush's.
    """
    piece: set[str] = set()
    upto = after
    for event_id, job_id in _refs(store, batch_id, after, until):
        upto = event_id
        if job_id:
            piece.add(job_id)
            if len(piece) >= size:
                yield sorted(piece), upto
                piece = set()
    if piece:
        yield sorted(piece), upto


def written_later(last_event_id: int, upto: int, until: int) -> bool:
    """Whether a job of a piece that covers the log up to `upto` is written with a later
    piece of the same flush: its newest event (`last_event_id`) is after the piece but
    within the flush. A job that moved after `until` is written with every piece it is in
    (a later piece may not hold it)."""
    return upto < last_event_id <= until


def _refs(store: Store, batch_id: str, after: int, until: int) -> Iterator[tuple[int, str | None]]:
    """(id, job_id) of the batch's events in (`after`, `until`], a page of the log at a time."""
    head = after
    while head < until:
        refs = store.event_refs_after(head, batch_id=batch_id, limit=_PAGE)
        for ref in refs:
            if ref[0] > until:
                return
            yield ref
        if len(refs) < _PAGE:
            return
        head = refs[-1][0]
