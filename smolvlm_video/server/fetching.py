"""Fetch a client's http(s) medium from the public internet, and from nowhere else.

A server that fetches URLs for its clients can be turned on its own network: its loopback services, the
cloud's metadata address (169.254.169.254), private ranges. So the address is checked where the connection
is made: the host is resolved, every address it resolves to must be global (not loopback, private,
link-local, shared CGNAT, multicast, reserved or unspecified, nor one of those written as IPv4-mapped, NAT64
or 6to4 IPv6), and the connection goes to the address that was checked, so a name that resolves again to
another address (DNS rebinding) changes nothing. TLS still checks the certificate against the host name.
Every redirect hop (at most `MAX_REDIRECTS`) goes through the same check. Only http and https; proxy
variables are ignored. An operator can allow media hosts of their own by name or network
(`--allow-fetch-host`), or send every fetch through a proxy of theirs (`--fetch-proxy`), which then decides.

The whole download has one deadline and one size limit, checked as bytes arrive. A refused or failed fetch
raises `FetchFailed`, whose reason is for the log: the client is told only that the fetch failed, so the
server cannot be used to map what answers on the far side.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

MAX_REDIRECTS = 3
SCHEMES = ("http", "https")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv6 addresses that carry an IPv4 one (RFC 6052)
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchFailed(Exception):
    """A fetch was refused or failed; the message says why, for the log only."""


class TooLarge(FetchFailed):
    """The medium is larger than the limit."""


def public(address: Address) -> bool:
    """Whether an address is on the public internet, looking inside IPv6 forms that carry an IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return public(address.ipv4_mapped)
        if address in NAT64:
            return public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None:
            return public(address.sixtofour)
        if address.teredo is not None:
            return False  # a tunnel to an address it does not show plainly
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class FetchPolicy:
    """Where a fetch may go, and what it may cost."""

    seconds: float  # the whole download, redirects included
    max_bytes: int
    # Host names (lower case) the operator trusts, whatever they resolve to.
    allowed_hosts: tuple[str, ...] = ()
    allowed_networks: tuple[Network, ...] = ()  # networks the operator trusts, e.g. a media host's
    proxy: str | None = None  # every fetch goes through this proxy, which then decides what is reached

    @classmethod
    def allowing(
        cls, seconds: float, max_bytes: int, hosts: Iterable[str], proxy: str | None = None
    ) -> FetchPolicy:
        """A policy that also allows each of `hosts`: a name, an address or a network in CIDR form."""
        names, networks = [], []
        for host in hosts:
            try:
                networks.append(ipaddress.ip_network(host, strict=False))
            except ValueError:
                names.append(host.lower().rstrip("."))
        return cls(seconds, max_bytes, tuple(names), tuple(networks), proxy)

    def address(self, host: str, port: int) -> str:
        """The address to connect to for `host`: resolved, and checked; FetchFailed where it may not be."""
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:
            raise FetchFailed(f"{host} does not resolve ({error})") from error
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in found]
        if not addresses:
            raise FetchFailed(f"{host} resolves to no address")
        trusted = host.lower().rstrip(".") in self.allowed_hosts
        for address in addresses:  # every one: a name must not hide a private address among public ones
            if not (trusted or public(address) or any(address in net for net in self.allowed_networks)):
                raise FetchFailed(f"{host} resolves to {address}, which is not a public address")
        return str(addresses[0])


class _CheckedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, connecting only to addresses the policy allows (checked as it connects)."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy, self.inner = policy, httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        address = self.policy.address(host, port)
        return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise FetchFailed("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport, its connection pool built on `_CheckedBackend`; TLS keeps the URL's host name."""

    def __init__(self, policy: FetchPolicy) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False), network_backend=_CheckedBackend(policy)
        )


def fetch(url: str, policy: FetchPolicy) -> bytes:
    """The bytes at an http(s) URL, within the policy: FetchFailed (TooLarge over the limit) otherwise."""
    deadline = time.monotonic() + policy.seconds
    if policy.proxy:
        transport: httpx.HTTPTransport = httpx.HTTPTransport(proxy=policy.proxy, trust_env=False)
    else:
        transport = CheckedTransport(policy)
    with httpx.Client(transport=transport, trust_env=False, follow_redirects=False) as client:
        try:
            request = client.build_request("GET", url, headers={"Accept-Encoding": "identity"})
            for _ in range(MAX_REDIRECTS + 1):
                if request.url.scheme not in SCHEMES:
                    raise FetchFailed(f"{request.url.scheme}: URLs are not fetched")
                request.extensions["timeout"] = _left(deadline)
                response = client.send(request, stream=True)
                try:
                    if response.next_request is None:
                        return _body(response, policy.max_bytes, deadline)
                    request = response.next_request
                finally:
                    response.close()
            raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")
        except httpx.HTTPError as error:
            raise FetchFailed(f"{type(error).__name__}: {error}") from error
        except httpcore.ConnectError as error:  # what the backend raises, where httpx does not map it
            raise FetchFailed(str(error)) from error


def _left(deadline: float) -> dict[str, float]:
    """httpcore's timeouts for what is left of the deadline; FetchFailed once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed("the deadline passed")
    return {"connect": left, "read": left, "write": left, "pool": left}


def _body(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    if response.status_code != 200:
        raise FetchFailed(f"HTTP {response.status_code}")
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise TooLarge(f"{declared} bytes declared")
    data = bytearray()
    for chunk in response.iter_raw():  # as sent: "identity" was asked, so nothing inflates here
        data += chunk
        if len(data) > max_bytes:
            raise TooLarge(f"over {max_bytes} bytes")
        _left(deadline)
    return bytes(data)
