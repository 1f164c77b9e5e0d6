"""Writing new job ids into their rows, finding again the rows the operator moved meanwhile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sheets_integration.sheet import RowsAsRead, Sheet, Table


def assign_ids(
    sheet: Sheet, table: Table, pending: Mapping[int, str], match: Sequence[str]
) -> tuple[set[str], int]:
    """Write each job id of `pending` (data row index -> id) into its row's Job ID cell (the
    last column of `match`); the ids that did NOT land and how many rows could not be found
    after the last try. (The ids that did not land, not those that did: usually none, where a
    set of every landed id of a 500,000-row sheet held ~50 MB.)

    A row is written only while its `match` cells are as `table` read them - the Job ID as
    read is part of that, so an old run's id is replaced only on the row it was read from.
    A row the operator moved meanwhile is found again by that content, up to three tries.
    """
    job_column = match[-1]
    lost: set[str] = set()
    for _attempt in range(3):
        if not pending:
            break
        expected = RowsAsRead(table, pending, match)
        refused = sheet.assign_job_ids(pending, expected, job_column=job_column)
        if not refused:
            return lost, 0
        # The operator moved rows meanwhile: read again, find each row by its content.
        fresh = sheet.read()
        remap: dict[int, str] = {}
        for i in refused:
            wanted = expected[i].items()  # built once per row, not once per row compared
            for j in range(len(fresh.rows)):
                if j not in remap and all(fresh.cell(j, c) == v for c, v in wanted):
                    remap[j] = pending[i]
                    break
            else:
                lost.add(pending[i])  # its row is gone (deleted, or its inputs edited)
        pending, table = remap, fresh
    lost.update(pending.values())
    return lost, len(pending)
