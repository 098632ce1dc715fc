"""Refuse webhook targets on internal networks (SSRF), at subscription and at delivery time.

Two layers: :func:`check_url` refuses a URL up front (clear error at subscription time and
before each attempt), and :func:`guarded_client` makes the HTTP client connect only to the
address it has just checked. The second layer closes the DNS-rebinding gap: a name that
resolves to a public address for the check and to 127.0.0.1 a moment later would otherwise
pass the check and then be connected to by a client that resolves the name again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing
from urllib.parse import urlsplit

import httpcore
import httpx


class UnsafeUrl(ValueError):
    pass


_UNSAFE = "a loopback, private, link-local or reserved address"
# IPv6 forms that reach an IPv4 address: each is refused when the address inside is.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # ::a.b.c.d, deprecated but still routed by some stacks
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
# RFC 8215 local-use NAT64 prefix: the IPv4 address may sit at several offsets and the
# translator is by definition on the local network, so the whole prefix is refused.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: IPv4-mapped, IPv4-compatible, NAT64
    (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32, server and client)."""
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if (ip in _IPV4_COMPATIBLE and int(ip) > 1) or ip in _NAT64:  # :: and ::1 are not IPv4 forms
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def _check_address(address: str) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global or ip.is_multicast:
        raise UnsafeUrl(f"resolves to {ip}, {_UNSAFE}")
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            raise UnsafeUrl(f"resolves to {ip}, in the local-use NAT64 prefix {_NAT64_LOCAL}")
        for inner in embedded_ipv4(ip):
            if not inner.is_global or inner.is_multicast:
                raise UnsafeUrl(f"resolves to {ip}, which leads to {inner}, {_UNSAFE}")


async def _resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to for a TCP connection."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # Only IPv4 and IPv6 answer a TCP lookup; their socket address starts with the address text.
    return [str(info[4][0]) for info in infos]


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise UnsafeUrl unless ``url`` is http(s) and (unless allowed) every address it resolves to is public.

    Called again right before each delivery, so a DNS answer that changes after the
    subscription was checked (DNS rebinding) is still refused.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("only http and https URLs are allowed")
    if not parts.hostname:
        raise UnsafeUrl("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("credentials in the URL are not allowed; use the signing secret")
    if allow_private:
        return
    try:
        _check_address(parts.hostname)
        return
    except ValueError as exc:
        if isinstance(exc, UnsafeUrl):
            raise
    try:
        addresses = await _resolve(parts.hostname, parts.port or 443)
    except socket.gaierror:
        raise UnsafeUrl(f"the host {parts.hostname!r} does not resolve") from None
    for address in addresses:
        _check_address(address)


def check_url_at_startup(url: str, *, allow_private: bool) -> None:
    """:func:`check_url` for configuration read at start-up (blocking; a name that does not
    resolve now passes: DNS may be down for a moment, and every send checks again)."""
    parts = urlsplit(url)
    if allow_private or not parts.hostname:
        return
    try:
        _check_address(parts.hostname)
        return
    except UnsafeUrl:
        raise
    except ValueError:
        pass  # a name
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return
    for info in infos:
        _check_address(str(info[4][0]))


async def resolve_checked(host: str, port: int) -> str:
    """The address to connect to for ``host``: refused unless every address it resolves to is public."""
    try:
        _check_address(host)
        return host  # an address literal, and a public one
    except UnsafeUrl:
        raise
    except ValueError:
        pass  # a name
    try:
        addresses = await _resolve(host, port)
    except socket.gaierror:
        raise UnsafeUrl(f"the host {host!r} does not resolve") from None
    for address in addresses:
        _check_address(address)
    return addresses[0]


class _CheckedAddressBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but every TCP connection goes to an address checked just now.

    TLS still verifies the certificate against the URL's host name: httpcore takes the SNI
    and verification name from the request's origin, not from the address connected to.
    """

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            address = await resolve_checked(host, port)
        except UnsafeUrl as exc:
            raise httpcore.ConnectError(f"refused: {exc}") from None
        return await self._inner.connect_tcp(
            address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[typing.Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        # httpx has no public hook for the network backend, so its pool is replaced by an
        # equivalent one (same defaults) built on the checked-address backend. A test sends
        # through a rebinding name, so a change in httpx that bypassed this would fail it.
        limits = httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_CheckedAddressBackend(),
        )


def guarded_client(*, timeout: float, allow_private: bool) -> httpx.AsyncClient:
    """The HTTP client deliveries use: no redirects, and (unless private targets are allowed)
    it connects only to public addresses, checked at connection time."""
    transport = None if allow_private else _GuardedTransport()
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport)
