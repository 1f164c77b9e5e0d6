"""The Sheets v4 calls the Google backend makes, with bodies encoded exactly as sent.

gspread's helpers address worksheets by title (A1 ranges); every call here addresses one by
its sheetId or by developer metadata, so a renamed tab (or a copy that took its old name)
cannot redirect a read or a write. Bodies are compact UTF-8 JSON encoded here, so the size
the ~2 MB split counts is the size that goes on the wire (gspread would escape non-ASCII
text as \\uXXXX, doubling CJK text).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gspread.http_client import ParamsType

from sheets_integration.google_access import GOOGLE_API_ROOT, SheetsHTTPClient

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}

GridRangeJson = dict[str, int]
DataFilter = dict[str, Any]


def encode(body: Mapping[str, Any]) -> bytes:
    """`body` as the bytes sent: compact separators, UTF-8, no escapes of non-ASCII text."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def whole_sheet(sheet_id: int) -> DataFilter:
    """A DataFilter selecting every cell of the worksheet `sheet_id`."""
    return {"gridRange": {"sheetId": sheet_id}}


def column_range(sheet_id: int, column: int) -> DataFilter:
    """A DataFilter selecting the whole column at `column` (0-based) as it is placed now."""
    return {
        "gridRange": {"sheetId": sheet_id, "startColumnIndex": column, "endColumnIndex": column + 1}
    }


def by_metadata_id(metadata_id: int) -> DataFilter:
    """A DataFilter selecting the row or column that developer metadata `metadata_id` is on."""
    return {"developerMetadataLookup": {"metadataId": metadata_id}}


class SheetsApi:
    """The spreadsheet `key`, reached through `http` (quota, timeouts, API root)."""

    def __init__(self, http: SheetsHTTPClient, key: str) -> None:
        self.http = http
        self.key = key

    def _url(self, suffix: str) -> str:
        return f"{GOOGLE_API_ROOT}/v4/spreadsheets/{self.key}{suffix}"

    def _post(
        self, suffix: str, body: Mapping[str, Any] | bytes, params: ParamsType | None = None
    ) -> dict[str, Any]:
        data = body if isinstance(body, bytes) else encode(body)
        response = self.http.request(
            "post", self._url(suffix), params=params, data=data, headers=JSON_HEADERS
        )
        answer: dict[str, Any] = response.json()
        return answer

    def sheets(self) -> list[dict[str, Any]]:
        """The SheetProperties of every worksheet (spreadsheets.get, properties only)."""
        response = self.http.request(
            "get",
            self._url(""),
            params={"includeGridData": "false", "fields": "spreadsheetId,sheets.properties"},
        )
        body: dict[str, Any] = response.json()
        return [s.get("properties", {}) for s in body.get("sheets", [])]

    def grid(
        self, sheet_id: int, fields: str, filters: Sequence[DataFilter] | None = None
    ) -> dict[str, Any] | None:
        """The Sheet resource of `sheet_id` with grid data of `filters` (the whole sheet by
        default), pruned to `fields` (spreadsheets.getByDataFilter); None when no such
        worksheet is left."""
        body = self._post(
            ":getByDataFilter",
            {"dataFilters": list(filters or [whole_sheet(sheet_id)]), "includeGridData": True},
            params={"fields": fields},
        )
        for sheet in body.get("sheets", []):
            if int(sheet.get("properties", {}).get("sheetId", 0)) == sheet_id:
                found: dict[str, Any] = sheet
                return found
        return None

    def values(
        self, filters: Sequence[DataFilter], *, render: str, major: str = "ROWS"
    ) -> list[tuple[dict[str, Any], list[DataFilter]]]:
        """values:batchGetByDataFilter: (ValueRange, the filters that matched it) per range."""
        body = self._post(
            "/values:batchGetByDataFilter",
            {"dataFilters": list(filters), "valueRenderOption": render, "majorDimension": major},
        )
        return [
            (matched.get("valueRange", {}), list(matched.get("dataFilters", [])))
            for matched in body.get("valueRanges", [])
        ]

    def update(self, body: bytes) -> list[dict[str, Any]]:
        """values:batchUpdateByDataFilter with a body already encoded; its `responses`."""
        answer = self._post("/values:batchUpdateByDataFilter", body)
        responses: list[dict[str, Any]] = answer.get("responses", [])
        return responses

    def batch_update(self, requests: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """spreadsheets.batchUpdate (all or nothing); its replies, one per request."""
        answer = self._post(":batchUpdate", {"requests": list(requests)})
        replies: list[dict[str, Any]] = answer.get("replies", [])
        return replies

    def batch_updates(self, requests: Iterable[Mapping[str, Any]], limit: int) -> int:
        """Independent requests (tags of many rows) in batchUpdates of at most `limit`
        bytes each, taken from `requests` as they are sent; how many were sent.

        Their replies are not needed, so none are asked for (`fields=spreadsheetId`): the
        answer of a batch tagging 6,000 rows would otherwise repeat every tag it made.
        """
        sent = 0
        chunk: list[Mapping[str, Any]] = []
        size = 0
        for request in requests:
            cost = len(encode(request)) + 1
            if chunk and size + cost > limit:
                self._unanswered(chunk)
                sent += len(chunk)
                chunk, size = [], 0
            chunk.append(request)
            size += cost
        if chunk:
            self._unanswered(chunk)
            sent += len(chunk)
        return sent

    def _unanswered(self, requests: Sequence[Mapping[str, Any]]) -> None:
        self._post(":batchUpdate", {"requests": list(requests)}, params={"fields": "spreadsheetId"})

    def search_metadata(self, filters: Sequence[DataFilter]) -> list[dict[str, Any]]:
        """developerMetadata:search: the DeveloperMetadata entries the filters select."""
        answer = self._post("/developerMetadata:search", {"dataFilters": list(filters)})
        return [m.get("developerMetadata", {}) for m in answer.get("matchedDeveloperMetadata", [])]
