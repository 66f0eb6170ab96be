"""The forms of redis.url (ADR 0311, 0312), checked when settings load."""

from __future__ import annotations

import re

import pytest

from auth_service.config.redis_url import parse_redis_url
from auth_service.config.settings import RedisSettings


def test_a_sentinel_url_names_its_sentinels_service_and_database() -> None:
    target = parse_redis_url("redis+sentinel://:s3cret@10.0.0.1:26380,sentinel-b/authmaster/3")
    assert target.sentinels == (("10.0.0.1", 26380), ("sentinel-b", 26379))
    assert target.service_name == "authmaster"
    assert target.db == 3
    assert target.password == "s3cret"
    assert not target.tls


def test_direct_urls_pass_through() -> None:
    assert parse_redis_url("rediss://cache:6380/0").tls
    assert parse_redis_url("redis://127.0.0.1:6379/6").service_name is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://cache:6379", "redis.url must start with one of"),
        ("redis+sentinel://s1:26379", "a Sentinel URL is redis+sentinel://"),
        ("redis+sentinel://s1:26379/svc/zero", "the database after the service name"),
        ("redis+sentinel://s1:port/svc", "is not host:port"),
    ],
)
def test_malformed_urls_are_refused_with_the_form(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        RedisSettings(url=url)  # type: ignore[arg-type]


def test_a_ca_without_tls_is_refused() -> None:
    with pytest.raises(ValueError, match=r"only used with a rediss:// redis\.url"):
        RedisSettings(url="redis://cache:6379/0", ssl_ca_cert="/etc/ssl/certs/ca.pem")  # type: ignore[arg-type]
