"""`IdIndex`: the job ids of one assignment as a set that costs 8 bytes an id.

Writing the ids of a 500,000-row batch into its sheet checks that no id is given twice and
finds the rows where one already sits. A set of the ids as `str` held ~100 bytes an id
(50 MB for such a batch, twice over: the check and the lookup); the ids `new_job_id`
makes ("j-" and 16 hex digits) are 64-bit numbers, kept here sorted in an `array('Q')`
and looked up by bisection. Any other id (a test's, an old version's) goes into a plain
set beside it.
"""

from __future__ import annotations

import heapq
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable

_NUMBERED = re.compile(r"j-[0-9a-f]{16}")
#: Ids sorted at once when the index is built: the sort's transient list stays this small.
_RUN = 16_384


def _number(job_id: str) -> int | None:
    return int(job_id[2:], 16) if _NUMBERED.fullmatch(job_id) else None


class IdIndex:
    """A set of job ids; `duplicate` names an id given more than once (None when none)."""

    def __init__(self, ids: Iterable[str]) -> None:
        runs: list[array[int]] = []
        run: list[int] = []
        self._others: set[str] = set()
        self.duplicate: str | None = None
        for job_id in ids:
            number = _number(job_id)
            if number is None:
                if job_id in self._others and self.duplicate is None:
                    self.duplicate = job_id
                self._others.add(job_id)
                continue
            run.append(number)
            if len(run) >= _RUN:
                runs.append(array("Q", sorted(run)))
                run = []
        runs.append(array("Q", sorted(run)))
        self._numbers = array("Q", heapq.merge(*runs)) if len(runs) > 1 else runs[0]
        del runs
        if self.duplicate is None:
            self.duplicate = self._first_repeat()

    def _first_repeat(self) -> str | None:
        numbers = self._numbers
        for i in range(1, len(numbers)):
            if numbers[i] == numbers[i - 1]:
                return f"j-{numbers[i]:016x}"
        return None

    def __contains__(self, job_id: object) -> bool:
        if not isinstance(job_id, str):
            return False
        number = _number(job_id)
        if number is None:
            return job_id in self._others
        index = bisect_left(self._numbers, number)
        return index < len(self._numbers) and self._numbers[index] == number

    def __len__(self) -> int:
        return len(self._numbers) + len(self._others)
