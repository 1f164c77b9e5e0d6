"""A Google Sheets API v4 stand-in: a real HTTP server on 127.0.0.1 for tests and benchmarks.

Unmodified gspread and google-auth talk to it: point gspread's HTTP client at `StandIn.url`
and give google-auth a key file from `StandIn.create_service_account()` (its `token_uri` is
the stand-in's JWT-bearer token endpoint). It keeps spreadsheets in memory, checks bearer
tokens and sharing, enforces per-minute quotas on an injectable clock, injects faults and
latency, lets hooks play the operator at any moment (before a chosen request, between a
client's read and its write, or at a time on its clock), and logs every request.

Beyond values it keeps developer metadata (moving with inserted, deleted and moved rows
and columns), answers DataFilter reads and writes, merges, protected ranges (400 for a
caller who may not edit them), `=HYPERLINK` formulas and linked text, and refuses request
bodies over 10 MB, as Google does.

This package is standalone: it imports nothing from sheetbatch.
"""

from gsheets_standin._a1 import Box, column_letters, format_range, parse_a1, quote_title
from gsheets_standin._auth import ServiceAccountKey, generate_service_account_key
from gsheets_standin._cells import Formula, RichText
from gsheets_standin._clock import ManualClock
from gsheets_standin._hooks import OperatorHook
from gsheets_standin._http import Fault
from gsheets_standin._log import LoggedRequest
from gsheets_standin._model import Spreadsheet, Worksheet
from gsheets_standin._quota import GOOGLE_QUOTA, QuotaLimits
from gsheets_standin._server import MAX_REQUEST_BYTES, StandIn

__all__ = [
    "GOOGLE_QUOTA",
    "MAX_REQUEST_BYTES",
    "Box",
    "Fault",
    "Formula",
    "LoggedRequest",
    "ManualClock",
    "OperatorHook",
    "QuotaLimits",
    "RichText",
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
