"""SSRF: IPv6 forms of internal IPv4 addresses are refused like the addresses themselves,
at subscription, at delivery time, and in the policy's channels at start-up."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.services.runtime import Runtime
from npsloop.shared.settings import ConfigError, Settings
from tests.support.receivers import HttpReceiver

# Each leads to an internal IPv4 address (named after it).
INTERNAL_IPV6 = [
    ("http://[::ffff:127.0.0.1]/hook", "IPv4-mapped 127.0.0.1"),
    ("http://[::ffff:a9fe:a9fe]/latest/meta-data", "IPv4-mapped 169.254.169.254"),
    ("http://[::127.0.0.1]/hook", "IPv4-compatible 127.0.0.1"),
    ("http://[::10.0.0.1]/hook", "IPv4-compatible 10.0.0.1"),
    ("http://[64:ff9b::7f00:1]/hook", "NAT64 127.0.0.1"),
    ("http://[64:ff9b::c0a8:1]/hook", "NAT64 192.168.0.1"),
    ("http://[64:ff9b:1::808:808]/hook", "local-use NAT64 prefix"),
    ("http://[2002:7f00:1::]/hook", "6to4 127.0.0.1"),
    ("http://[2002:a00:1::1]/hook", "6to4 10.0.0.1"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook", "Teredo client 127.0.0.1"),
]
PUBLIC_IPV6 = [
    "http://[64:ff9b::808:808]/hook",  # NAT64 of 8.8.8.8
    "http://[2002:808:808::1]/hook",  # 6to4 of 8.8.8.8
    "http://[2606:4700:4700::1111]/hook",
]


@pytest.mark.parametrize("url, form", INTERNAL_IPV6)
async def test_ipv6_forms_of_internal_ipv4_addresses_are_refused_at_subscription(client, runtime, make_key, url, form):
    runtime.settings.allow_private_webhook_urls = False
    reply = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=await make_key("admin"))
    assert reply.status_code == 422, f"{form}: {reply.text}"
    assert reply.json()["errors"][0]["field"] == "url"


@pytest.mark.parametrize("url", PUBLIC_IPV6)
async def test_ipv6_forms_of_public_addresses_are_still_accepted(client, runtime, make_key, url):
    runtime.settings.allow_private_webhook_urls = False
    reply = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=await make_key("admin"))
    assert reply.status_code == 201, reply.text


async def test_ipv6_forms_of_internal_addresses_are_refused_at_delivery_time(client, runtime, make_key, pump):
    """Subscriptions made while private targets were allowed; the worker no longer allows
    them. The IPv4-mapped one reaches the receiver on 127.0.0.1 when allowed (checked first),
    so its refusal is a real one."""
    receiver = HttpReceiver()
    try:
        port = receiver.server.server_address[1]
        headers = await make_key("admin")
        mapped = f"http://[::ffff:127.0.0.1]:{port}/hook"
        for url in [mapped] + [url.replace("]/", f"]:{port}/") for url, _ in INTERNAL_IPV6]:
            reply = await client.post("/v1/webhooks", json={"url": url, "events": ["*"]}, headers=headers)
            assert reply.status_code == 201, reply.text
        await client.post("/v1/responses", json={"score": 2, "customer": {"id": "c-ssrf6"}}, headers=headers)
        await pump()

        worker = DeliveryWorker(runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=False)
        assert await worker.run_once() > 0
        await worker.close()
        assert receiver.requests == []
        async with runtime.db.sessions() as session:
            errors = (await session.scalars(text("SELECT error FROM delivery_attempts"))).all()
        assert errors and all(e and e.startswith("refused") for e in errors), errors

        allowed = DeliveryWorker(runtime.db, runtime.clock, timeout=5, max_age=timedelta(hours=26), allow_private=True)
        runtime.clock.advance(hours=2)
        await allowed.run_once()
        await allowed.close()
        assert receiver.requests, "the IPv4-mapped address does lead to 127.0.0.1"
    finally:
        receiver.close()


def _settings_with_channel(tmp_path, url: str, **overrides) -> Settings:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f'channels:\n  ops-hook: {{type: webhook, url: "{url}"}}\n  cs-slack: {{type: slack, url: "https://hooks.slack.com/services/T/B/x"}}\n'
    )
    values = {"data_dir": tmp_path / "data", "environment": "test", "policy_file": policy, **overrides}
    return Settings(**values)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/alerts", "http://[64:ff9b::a00:5]/alerts", "http://localhost/x"]
)
def test_a_policy_channel_with_an_internal_target_stops_start_up_naming_the_channel(tmp_path, url):
    with pytest.raises(ConfigError) as refused:
        Runtime.build(_settings_with_channel(tmp_path, url, allow_private_webhook_urls=False))
    message = str(refused.value)
    assert "channels.ops-hook.url" in message and "NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS" in message
    assert "cs-slack" not in message


def test_a_policy_channel_with_an_internal_target_starts_when_private_targets_are_allowed(tmp_path):
    runtime = Runtime.build(
        _settings_with_channel(tmp_path, "http://127.0.0.1:9000/a", allow_private_webhook_urls=True)
    )
    assert "ops-hook" in runtime.policy.channels
