"""Where a webhook may be sent: the SSRF rules, checked when a subscription is saved and
again at every delivery (DNS answers change).

A target must be https (http only with ``webhooks.allow_http``), and every address its host
resolves to must be public: private, loopback, link-local, multicast, reserved and other
non-global addresses are refused unless ``webhooks.allowed_networks`` holds them. A delivery
connects to the address checked here (never resolving the name again), so a DNS answer that
changes between the check and the connection (rebinding) cannot send it elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

from auth_service.config.settings import WebhookSettings
from auth_service.webhooks.errors import TargetRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A checked target: the URL as configured, and the addresses to connect to (in the
    resolver's order; every one of them allowed)."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]

    def pinned_url(self, address: IPAddress) -> httpx.URL:
        """The URL with a checked address in place of the host name."""
        return self.url.copy_with(host=str(address))

    @property
    def host_header(self) -> str:
        default = 443 if self.url.scheme == "https" else 80
        port = self.url.port
        return self.url.host if port in (None, default) else f"{self.url.host}:{port}"


def check_url(url: str, settings: WebhookSettings) -> httpx.URL:
    """The URL parsed, or TargetRefused: https (or http when allowed), a host, no userinfo."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        raise TargetRefused("not a valid URL") from None
    if parsed.scheme == "http" and not settings.allow_http:
        raise TargetRefused("must be https (http needs webhooks.allow_http)")
    if parsed.scheme not in ("https", "http"):
        raise TargetRefused("must be an https URL")
    if not parsed.host:
        raise TargetRefused("has no host")
    if parsed.userinfo:
        raise TargetRefused("must not carry credentials")
    if parsed.fragment:
        raise TargetRefused("must not have a fragment")
    return parsed


def address_allowed(address: IPAddress, settings: WebhookSettings) -> bool:
    """Public addresses, and those of ``webhooks.allowed_networks``."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for cidr in settings.allowed_networks:
        if address in ipaddress.ip_network(cidr, strict=False):
            return True
    return address.is_global and not address.is_multicast


async def resolve(url: str, settings: WebhookSettings) -> Target:
    """Check ``url`` and resolve its host; TargetRefused when any address is not allowed
    (a name with one private address among public ones is refused whole)."""
    parsed = check_url(url, settings)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        async with asyncio.timeout(settings.timeout_seconds):
            infos = await asyncio.get_running_loop().getaddrinfo(
                parsed.host, port, type=socket.SOCK_STREAM
            )
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"host {parsed.host} does not resolve ({exc})") from None
    except TimeoutError:
        raise TargetRefused(f"host {parsed.host} did not resolve in time") from None
    # Each address once, in the resolver's order.
    addresses = tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRefused(f"host {parsed.host} has no address")
    for address in addresses:
        if not address_allowed(address, settings):
            raise TargetRefused(
                f"{parsed.host} resolves to {address}, which is not a public address "
                "(allow its network in webhooks.allowed_networks)"
            )
    return Target(parsed, addresses)
