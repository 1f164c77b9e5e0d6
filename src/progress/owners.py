"""Lease-owner identities (`host:pid:tag`) and whether an owner is still alive.

Every lease in the store (a running job's, a leader's) names its owner this way, so any
process on the same host can tell a dead owner from one that is merely slow.
"""

from __future__ import annotations

import os
import secrets
import socket


def new_owner() -> str:
    """This process's lease-owner identity: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_alive(owner: str, *, me: str | None = None) -> bool | None:
    """Whether a lease owner is alive: False when it was a process of this host that is gone.

    None when it cannot be known here (another host, or a live pid that may be reused):
    then its lease expiry decides.
    """
    try:
        host, pid_text, _tag = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return None
    if owner == me:
        return True
    if host != socket.gethostname():
        return None
    if pid == os.getpid():
        return False  # an earlier owner inside this very process that is no longer running
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return None
    return None
