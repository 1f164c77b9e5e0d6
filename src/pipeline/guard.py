"""The SSRF guard: which addresses untrusted sheet cells may make the fetcher reach.

`HostPolicy` decides (public addresses always; private, loopback, link-local, multicast,
unspecified and reserved ones only when allowed by name, name:port or network).
`GuardedBackend` is httpcore's network backend with the policy built in: it resolves the host
itself, vets every address, and connects to the very address it vetted, so neither a redirect
nor DNS rebinding can reach an internal service. Every TCP connection the fetcher makes goes
through it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore

from pipeline.errors import BlockedAddress, FetchError, TransientFetchError

__all__ = ["GuardedBackend", "HostPolicy", "Resolver", "is_ip", "system_resolve"]

# A host name as an allow-list entry: dot-separated labels of letters, digits, "-" and "_".
_HOST_NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9_-]{1,63}(?<!-))*")

Resolver = Callable[[str, int], list[str]]
"""Maps (host, port) to IP address strings; raises `OSError` when the name does not resolve."""


def system_resolve(host: str, port: int) -> list[str]:
    """Resolve a host name with the system resolver (`socket.getaddrinfo`), TCP only."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def _address_kind(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is off-limits ("private", "loopback"...), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _address_kind(ip.ipv4_mapped)
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global:
        return "private"
    return None


class HostPolicy:
    """Which destinations may be contacted.

    Public addresses always may. Private-like addresses only when allowed by an `allow_hosts`
    entry: `HOST` (any port), `HOST:PORT`, `[IPv6]:PORT`, or a CIDR network like `127.0.0.0/8`
    (matched against the resolved addresses).
    """

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self._hosts: set[str] = set()
        self._host_ports: set[tuple[str, int]] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow_hosts:
            self._add(entry.strip().lower())

    def _add(self, entry: str) -> None:
        if not entry:
            return
        if "/" in entry:
            try:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(f"allow_hosts: not a network: {entry!r}") from None
            return
        match = re.fullmatch(r"\[([0-9a-f:.]+)\](?::(\d+))?|([^:\[\]]+)(?::(\d+))?", entry)
        if match is None:
            if is_ip(entry):  # a bare IPv6 address
                self._hosts.add(str(ipaddress.ip_address(entry)))
                return
            raise ValueError(f"allow_hosts: not HOST, HOST:PORT or a CIDR: {entry!r}")
        raw_host = match.group(1) or match.group(3)
        port = match.group(2) or match.group(4)
        if not (is_ip(raw_host) or _HOST_NAME.fullmatch(raw_host.rstrip("."))):
            raise ValueError(f"allow_hosts: not HOST, HOST:PORT or a CIDR: {entry!r}")
        if port is not None and not 0 < int(port) < 65536:
            raise ValueError(f"allow_hosts: not a port number: {entry!r}")
        host = canonical_host(raw_host)
        if port is None:
            self._hosts.add(host)
        else:
            self._host_ports.add((host, int(port)))

    def allows_name(self, host: str, port: int) -> bool:
        """True when the host (as written in the URL) is explicitly allowed on this port."""
        host = canonical_host(host)
        return host in self._hosts or (host, port) in self._host_ports

    def check_address(self, address: str) -> None:
        """Raise `BlockedAddress` unless the address is public or inside an allowed network."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        kind = _address_kind(ip)
        if kind is None or any(ip in network for network in self._networks):
            return
        raise BlockedAddress(f"blocked {kind} address {ip}", kind)

    def vet(self, host: str, port: int, resolve: Resolver) -> list[str]:
        """Resolve `host` and return the addresses it is safe to connect to, or raise.

        Every resolved address must pass: one private answer among public ones refuses the host.
        """
        host = canonical_host(host)
        if is_ip(host):
            addresses = [host]
        else:
            try:
                addresses = list(dict.fromkeys(resolve(host, port)))
            except OSError as exc:
                if getattr(exc, "errno", None) == socket.EAI_AGAIN:
                    raise TransientFetchError(f"DNS lookup failed for {host}") from exc
                raise FetchError(f"unknown host {host}") from exc
            if not addresses:
                raise FetchError(f"unknown host {host}")
        if not self.allows_name(host, port):
            for address in addresses:
                self.check_address(address)
        return addresses


def canonical_host(host: str) -> str:
    host = host.strip("[]").rstrip(".").lower()
    return str(ipaddress.ip_address(host)) if is_ip(host) else host


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class GuardedBackend(httpcore.NetworkBackend):
    """A network backend that vets every address before connecting, then connects to it."""

    def __init__(self, policy: HostPolicy, resolve: Resolver) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._policy.vet(host, port, self._resolve)
        error: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise BlockedAddress("blocked unix socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)
