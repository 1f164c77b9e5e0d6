"""A Google Sheets API v4 stand-in: a real HTTP server on 127.0.0.1 for tests and benchmarks.

Unmodified gspread and google-auth talk to it: point gspread's HTTP client at `StandIn.url`
and give google-auth a key file from `StandIn.create_service_account()` (its `token_uri` is
the stand-in's JWT-bearer token endpoint). It keeps spreadsheets in memory, checks bearer
tokens and sharing, enforces per-minute quotas on an injectable clock, injects faults and
latency, lets a hook play the operator between a client's read and its write, and logs
every request.

This package is standalone: it imports nothing from sheetbatch.
"""

from gsheets_standin._a1 import column_letters, format_range, parse_a1, quote_title
from gsheets_standin._auth import ServiceAccountKey, generate_service_account_key
from gsheets_standin._cells import Formula
from gsheets_standin._clock import ManualClock
from gsheets_standin._http import Fault
from gsheets_standin._model import Spreadsheet, Worksheet
from gsheets_standin._quota import GOOGLE_QUOTA, QuotaLimits
from gsheets_standin._server import LoggedRequest, OperatorHook, StandIn

__all__ = [
    "GOOGLE_QUOTA",
    "Fault",
    "Formula",
    "LoggedRequest",
    "ManualClock",
    "OperatorHook",
    "QuotaLimits",
    "ServiceAccountKey",
    "Spreadsheet",
    "StandIn",
    "Worksheet",
    "column_letters",
    "format_range",
    "generate_service_account_key",
    "parse_a1",
    "quote_title",
]
