"""Refuse webhook targets on internal networks (SSRF), at subscription and at delivery time."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeUrl(ValueError):
    pass


def _check_address(address: str) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global or ip.is_multicast:
        raise UnsafeUrl(f"resolves to {ip}, a loopback, private, link-local or reserved address")


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
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UnsafeUrl(f"the host {parts.hostname!r} does not resolve") from None
    for info in infos:
        _check_address(info[4][0])
