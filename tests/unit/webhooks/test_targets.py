"""The SSRF rules of webhook targets: https only (http by setting), public addresses only
unless allow-listed, and a name that resolves to a private address is refused whole."""

from __future__ import annotations

import ipaddress

import pytest

from auth_service.config.settings import WebhookSettings
from auth_service.webhooks.errors import TargetRefused
from auth_service.webhooks.targets import address_allowed, check_url, resolve

STRICT = WebhookSettings()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104 - an address refused, not bound
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "ff02::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not address_allowed(ipaddress.ip_address(address), STRICT)


def test_public_addresses_pass_and_the_allow_list_opens_a_network() -> None:
    assert address_allowed(ipaddress.ip_address("93.184.216.34"), STRICT)
    assert address_allowed(ipaddress.ip_address("2606:4700::1111"), STRICT)
    internal = WebhookSettings(allowed_networks=["10.20.0.0/16"])
    assert address_allowed(ipaddress.ip_address("10.20.3.4"), internal)
    assert not address_allowed(ipaddress.ip_address("10.21.3.4"), internal)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://example.com/hook", "must be https"),
        ("ftp://example.com/hook", "must be an https URL"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https:///hook", "no host"),
    ],
)
def test_urls_are_checked_before_any_lookup(url: str, reason: str) -> None:
    with pytest.raises(TargetRefused, match=reason):
        check_url(url, STRICT)


def test_http_only_with_its_setting() -> None:
    assert check_url("http://example.com/x", WebhookSettings(allow_http=True)).scheme == "http"


async def test_a_name_resolving_to_loopback_is_refused_unless_allowed() -> None:
    with pytest.raises(TargetRefused, match="not a public address"):
        await resolve("https://localhost/hook", STRICT)
    allowed = WebhookSettings(allowed_networks=["127.0.0.0/8", "::1/128"])
    target = await resolve("https://localhost:8443/hook", allowed)
    assert all(a.is_loopback for a in target.addresses)
    assert target.host_header == "localhost:8443"
    assert target.pinned_url(target.addresses[0]).host == str(target.addresses[0])


def test_a_bad_allow_list_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="not a network"):
        WebhookSettings(allowed_networks=["not-a-cidr"])
