"""scripts/webhook_receiver.py, the receiver the README's first five minutes runs.

It runs as its own process, as a reader starts it; deliveries are signed by the
``standardwebhooks`` library, not by npsloop's signing code.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.processes import free_port

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "webhook_receiver.py"
SECRET = "whsec_" + base64.b64encode(b"a test secret of 32 bytes length").decode()


@pytest.fixture
def receiver():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(port), "--secret", SECRET], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert "listening on" in process.stdout.readline()
        yield port, process
    finally:
        process.terminate()
        process.wait(timeout=10)


def post(port: int, body: bytes, headers: dict[str, str]) -> int:
    return httpx.post(f"http://127.0.0.1:{port}/nps", content=body, headers=headers, timeout=10).status_code


def test_prints_each_delivery_with_its_headers_body_and_whether_the_signature_holds(receiver):
    port, process = receiver
    body = json.dumps({"type": "npsloop.followup.opened.v1", "data": {"score": 2}}).encode()
    moment = datetime.now(UTC).replace(microsecond=0)
    signed = {
        "webhook-id": "evt-1",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("evt-1", moment, body.decode()),
        "content-type": "application/json",
    }
    assert post(port, body, signed) == 204
    forged = {**signed, "webhook-id": "evt-2"}  # the signature covers the id: this one no longer holds
    assert post(port, body, forged) == 204
    process.terminate()
    printed = process.communicate(timeout=10)[0]

    first, second = printed.split("--- POST /nps")[1:]
    assert "webhook-id: evt-1" in first
    assert "signature: valid" in first
    assert '"type": "npsloop.followup.opened.v1"' in first  # the body, pretty-printed
    assert "webhook-id: evt-2" in second
    assert "signature: INVALID" in second
