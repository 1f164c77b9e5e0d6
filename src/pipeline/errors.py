"""The exception tree of the pipeline package."""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error the pipeline package raises."""


class PipelineNotFound(PipelineError):
    """A pipeline name or `module:attribute` reference could not be resolved."""


class PhaseError(PipelineError):
    """A phase failed; `reason` is short and human-readable ("connection refused").

    The runner records it as "<phase>: <reason>" on the job; the traceback goes to the log.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(PhaseError):
    """A failure worth retrying (a timeout, a reset connection, a 5xx)."""


class PhaseTimeout(PhaseError):
    """The phase ran past its deadline."""


class JobCancelled(PipelineError):
    """The job was cancelled; raised by `JobContext.check()` at a safe point."""


class FetchError(PhaseError):
    """A page could not be fetched; the reason names why ("blocked private address 10.0.0.5")."""


class BlockedAddress(FetchError):
    """The target resolves to a private, loopback, link-local or multicast address.

    `kind` names the kind of address ("loopback", "private", ...) when known.
    """

    def __init__(self, reason: str, kind: str = "") -> None:
        super().__init__(reason)
        self.kind = kind


class TransientFetchError(FetchError, TransientError):
    """A fetch failure worth retrying (timeout, connection reset, 5xx)."""
