"""The stand-in server: Sheets v4 over real HTTP on 127.0.0.1, with faults, quotas and a log."""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gsheets_standin._auth import Authority, ServiceAccountKey, generate_service_account_key
from gsheets_standin._errors import (
    ApiError,
    internal,
    invalid_argument,
    not_found,
    permission_denied,
    rate_limited,
    unauthenticated,
    unavailable,
)
from gsheets_standin._faults import FaultQueue, PendingFault
from gsheets_standin._hooks import Hooks, OperatorHook, RequestInfo
from gsheets_standin._http import Fault, HTTPServer, Reply
from gsheets_standin._journal import in_place, journaled
from gsheets_standin._log import LoggedRequest, RequestLog
from gsheets_standin._methods import execute
from gsheets_standin._model import (
    ACTOR,
    ProtectedCell,
    Spreadsheet,
    make_worksheet,
    new_sheet_id,
    new_spreadsheet_id,
)
from gsheets_standin._quota import GOOGLE_QUOTA, QuotaCounter, QuotaLimits
from gsheets_standin._routes import Route, rpc_method
from gsheets_standin._routes import route as route_of

MAX_REQUEST_BYTES = 10 * 1024 * 1024
"""Google refuses request bodies larger than 10 MB."""


class StandIn:
    """A Sheets v4 API stand-in on 127.0.0.1 that unmodified gspread and google-auth talk to.

    Use it as a context manager (or `start()` / `stop()`); `url` is the API root to use in
    place of https://sheets.googleapis.com, and `token_url` is the OAuth token endpoint that
    service-account key files from `create_service_account()` point at.

    `clock` drives the per-minute quotas (inject a `ManualClock` to refill them instantly);
    `quota=None` turns them off. The request log records both that clock and wall time.
    `wall` is the token endpoint's idea of the time of day (one that is off plays a client
    whose system clock is wrong). Request bodies over 10 MB are refused as Google does.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        quota: QuotaLimits | None = GOOGLE_QUOTA,
        project_number: int = 123456789012,
        token_lifetime: int = 3600,
        host: str = "127.0.0.1",
        port: int = 0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the stand-in only listens on the loopback interface")
        self.clock = clock
        self.project_number = project_number
        self.authority = Authority(token_lifetime, wall)
        self.quota = QuotaCounter(quota, clock, project_number)
        self.latency = 0.0
        """Seconds added (really slept) before every API request is processed."""
        self._host, self._port = host, port
        self._lock = threading.RLock()
        self._books: dict[str, Spreadsheet] = {}
        self._faults = FaultQueue()
        self._auth_failures = 0
        self.hooks = Hooks()
        """Operator edits at chosen moments (see `before`, `at_time`, `between_read_and_write`)."""
        self._last_kind: dict[tuple[str, str], str] = {}
        self._log = RequestLog()
        self._stopping = threading.Event()
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> StandIn:
        """Listen on an ephemeral port (unless one was given) and serve in a thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = HTTPServer((self._host, self._port), self.dispatch, self._stopping)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="gsheets-standin",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection, and join the worker threads."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API root, e.g. "http://127.0.0.1:54321" (requests go to `{url}/v4/...`)."""
        if self._httpd is None:
            raise RuntimeError("the stand-in is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint."""
        return f"{self.url}/token"

    # ------------------------------------------------------------------ accounts
    def create_service_account(self, email: str | None = None) -> ServiceAccountKey:
        """Generate and register a service-account key whose `token_uri` is this stand-in."""
        if email is None:
            email = f"sheetbatch-{secrets.token_hex(3)}@standin-project.iam.gserviceaccount.com"
        key = generate_service_account_key(email, self.token_url)
        self.authority.register_key(key)
        return key

    def register_service_account(self, key: ServiceAccountKey) -> ServiceAccountKey:
        """Register an existing key (e.g. generated once per test session), re-pointed here."""
        rebound = ServiceAccountKey({**key.info, "token_uri": self.token_url}, key.public_key_pem)
        self.authority.register_key(rebound)
        return rebound

    def create_authorized_user(self, email: str) -> dict[str, str]:
        """An OAuth authorized-user file's content for `email`, refreshing against this stand-in."""
        return {**self.authority.register_user(email), "token_uri": self.token_url}

    def issue_token(self, email: str) -> str:
        """A bearer token for `email`, for raw HTTP tests that skip the token endpoint."""
        return self.authority.issue(email)

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far: clients get 401 until they refresh."""
        self.authority.revoke_all()

    def fail_auth(self, times: int = 1) -> None:
        """Answer the next `times` API requests 401 and revoke the token they carried."""
        with self._lock:
            self._auth_failures += times

    # ------------------------------------------------------------------ spreadsheets
    def create_spreadsheet(
        self,
        sheets: Mapping[str, Sequence[Sequence[Any]]] | None = None,
        *,
        title: str = "Untitled spreadsheet",
        shared_with: Iterable[str] = (),
        key: str | None = None,
        rows: int = 1000,
        cols: int = 26,
        owner: str = "owner@example.com",
    ) -> str:
        """Create a spreadsheet whose worksheets hold `sheets` (title -> rows of values).

        Values are stored as RAW input stores them (strings stay text). The first worksheet
        gets sheetId 0. Only the `shared_with` accounts (and `owner`, who may always edit,
        protected ranges included) may open it. Returns the key.
        """
        key = key or new_spreadsheet_id()
        content = dict(sheets or {"Sheet1": []})
        worksheets = [
            make_worksheet(name, 0 if i == 0 else new_sheet_id(), i, values, rows, cols)
            for i, (name, values) in enumerate(content.items())
        ]
        with self._lock:
            self._books[key] = Spreadsheet(
                key, title, worksheets, {*shared_with, owner}, owner=owner
            )
        return key

    def share(self, key: str, email: str) -> None:
        """Give `email` access to spreadsheet `key`."""
        with self._lock:
            self._books[key].shared_with.add(email)

    def unshare(self, key: str, email: str) -> None:
        """Take access to spreadsheet `key` away from `email`."""
        with self._lock:
            self._books[key].shared_with.discard(email)

    @contextlib.contextmanager
    def edit(self, key: str) -> Iterator[Spreadsheet]:
        """The live spreadsheet `key`, locked against requests while the block runs."""
        with self._lock:
            yield self._books[key]

    def values(self, key: str, sheet: str | None = None) -> list[list[str]]:
        """A worksheet's used range as the user sees it (trailing empties trimmed)."""
        with self._lock:
            return self._books[key].sheet(sheet).formatted()

    def set_quota(self, limits: QuotaLimits | None) -> None:
        """Change the per-minute limits from now on (None: unlimited)."""
        self.quota.limits = limits

    # ------------------------------------------------------------------ faults and hooks
    def inject(
        self, fault: Fault | str, times: int = 1, *, kind: str = "api", delay: float = 30.0
    ) -> None:
        """Make the next `times` requests of `kind` fail with `fault`.

        `kind` is "read", "write", "api" (either), "token" (the token endpoint) or "any".
        `delay` is how long a TIMEOUT fault holds the request before dropping it.
        """
        self._faults.add(Fault(fault), times, kind, delay)

    def clear_faults(self) -> None:
        """Forget every pending fault and auth failure."""
        self._faults.clear()
        with self._lock:
            self._auth_failures = 0

    def between_read_and_write(self, hook: OperatorHook | None, times: int | None = 1) -> None:
        """Run `hook` (an operator's edit) when a caller's write follows its read of a sheet.

        It runs `times` times (None: every time); `None` as hook removes it.
        """
        self.hooks.replace_read_write(hook, times)

    def before(
        self,
        hook: OperatorHook,
        *,
        route: str | None = None,
        kind: str | None = None,
        skip: int = 0,
        times: int | None = 1,
    ) -> None:
        """Run `hook` just before the next request of `route` (e.g.
        "values.batchUpdateByDataFilter") and/or `kind` ("read", "write"), after passing
        over `skip` of them; `times` times (None: every time)."""
        self.hooks.add(hook, route=route, kind=kind, skip=skip, times=times)

    def at_time(self, when: float, hook: OperatorHook, *, kind: str | None = None) -> None:
        """Run `hook` once, before the first request (of `kind`) once the stand-in's clock
        reads `when` or later: an edit on a timer, e.g. in the middle of a quota pause."""
        self.hooks.add(hook, kind=kind, at=when)

    # ------------------------------------------------------------------ log
    @property
    def log(self) -> list[LoggedRequest]:
        """Every request so far, oldest first."""
        return self._log.entries()

    def clear_log(self) -> None:
        """Empty the request log."""
        self._log.clear()

    def count(
        self,
        *,
        route: str | None = None,
        kind: str | None = None,
        status: int | None = None,
        user: str | None = None,
    ) -> int:
        """How many logged requests match every given filter."""
        return self._log.count(route=route, kind=kind, status=status, user=user)

    # ------------------------------------------------------------------ dispatch
    def _record(
        self,
        method: str,
        path: str,
        route: Route | None,
        reply: Reply,
        user: str | None,
        size: int,
    ) -> None:
        entry = LoggedRequest(
            method=method,
            path=path,
            route=route.name if route else "unknown",
            kind=route.kind if route else "unknown",
            status=0 if reply.drop else reply.status,
            at=self.clock(),
            wall=time.time(),
            user=user,
            spreadsheet_id=route.spreadsheet_id if route else None,
            fault=reply.drop.value if reply.drop else None,
            size=size,
        )
        self._log.append(entry)

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one HTTP request (header names in lower case); used by the request handler."""
        split = urlsplit(target)
        route = route_of(method, split.path)
        user: str | None = None
        try:
            if route is None:
                raise not_found()
            fault = self._faults.take(route.kind)
            if fault is not None:
                reply = self._fault_reply(fault, route)
                self._record(method, split.path, route, reply, None, len(body))
                return reply
            if route.name == "token":
                reply = self._token(body)
            else:
                if self.latency > 0:
                    self._stopping.wait(self.latency)
                rpc = rpc_method(route)
                user, token = self.authority.authenticate(headers.get("authorization"), rpc)
                reply = self._api(user, token, rpc, route, split.query, body)
        except ApiError as exc:
            reply = _error_reply(exc)
        self._record(method, split.path, route, reply, user, len(body))
        return reply

    def _fault_reply(self, fault: PendingFault, route: Route) -> Reply:
        if fault.fault is Fault.INTERNAL:
            return _error_reply(internal())
        if fault.fault is Fault.UNAVAILABLE:
            return _error_reply(unavailable())
        if fault.fault is Fault.RATE_LIMITED:
            kind = route.kind if route.kind in ("read", "write") else "write"
            return _error_reply(rate_limited(kind, True, 60, self.project_number))
        return Reply(0, None, {}, drop=fault.fault, delay=fault.delay)

    def _token(self, body: bytes) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        status, payload = self.authority.grant(form, self.token_url)
        return Reply(status, payload, {"Cache-Control": "no-cache, no-store, max-age=0"})

    def _api(
        self, email: str, token: str, rpc: str, route: Route, query: str, body: bytes
    ) -> Reply:
        with self._lock:
            if self._auth_failures > 0:
                self._auth_failures -= 1
                self.authority.revoke(token)
                raise unauthenticated("ACCESS_TOKEN_EXPIRED", rpc)
        self.quota.charge(email, route.kind)
        if len(body) > MAX_REQUEST_BYTES:
            raise invalid_argument(
                f"Request payload size exceeds the limit: {MAX_REQUEST_BYTES} bytes."
            )
        params = parse_qs(query, keep_blank_values=True)
        payload = _json_body(body)
        with self._lock:
            if route.name == "spreadsheets.create":
                created = Spreadsheet.created_by(email, payload)
                self._books[created.spreadsheet_id] = created
                return Reply(200, created.resource(), {})
            assert route.spreadsheet_id is not None
            if route.spreadsheet_id not in self._books:
                raise not_found()
            book = self._books[route.spreadsheet_id]
            marker = (email, route.spreadsheet_id)
            info = RequestInfo(
                route.name, route.kind, self._last_kind.get(marker) == "read", self.clock()
            )
            for hook in self.hooks.due(info):
                hook(book)  # before anything of the request is checked: sharing included
            if email not in book.shared_with:
                raise permission_denied()
            # All or nothing: a write that only sets cells or adds and removes developer
            # metadata runs on the spreadsheet itself, undone if it fails (its cost is the
            # cells it writes); any other write runs on a copy kept only on success.
            journal: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
            if route.kind == "write":
                if in_place(route.name, payload):
                    journal = journaled()
                else:
                    book = book.copy()
            token_ = ACTOR.set((email, book.owner))
            try:
                with journal:
                    result = execute(route, book, params, payload, email)
            except ProtectedCell as exc:
                raise invalid_argument(str(exc)) from None
            finally:
                ACTOR.reset(token_)
            if route.kind == "write":
                self._books[route.spreadsheet_id] = book
            self._last_kind[marker] = route.kind
            return Reply(200, result, {})


def _json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        payload = json.loads(body)
    except ValueError:
        raise invalid_argument("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(payload, dict):
        raise invalid_argument("Invalid JSON payload received. Expected an object.")
    return payload


def _error_reply(exc: ApiError) -> Reply:
    return Reply(exc.code, exc.body(), exc.headers)
