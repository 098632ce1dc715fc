"""Slow clients and lying Content-Length headers, over raw sockets against a real `npsloop up`:
each is cut off with a 408 within its deadline, and the clients beside them are served as usual."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.processes import base_env, free_port, run_cli, start, stop, wait_ready

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, str]]:
    home = tmp_path_factory.mktemp("slow-clients")
    env = base_env(
        NPSLOOP_DATA_DIR=str(home / "data"),
        NPSLOOP_REQUEST_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
        NPSLOOP_REQUEST_BODY_TIMEOUT_SECONDS=str(BODY_TIMEOUT),
    )
    created = run_cli("keys", "create", "--name", "slow", "--scopes", "admin", env=env, cwd=home)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    port = free_port()
    process = start("up", "--port", str(port), env=env, cwd=home, log=home / "up.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, home / "up.log")
        yield "127.0.0.1", port, key
    finally:
        stop(process)
    logged = (home / "up.log").read_text()
    assert "Traceback" not in logged and "Exception in ASGI application" not in logged, logged[-3000:]


def _connect(server: tuple[str, int, str]) -> socket.socket:
    return socket.create_connection(server[:2], timeout=15)  # a hang fails the test, it does not stall it


def _until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def _one_response(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _headers(server: tuple[str, int, str], length: int) -> bytes:
    return (
        f"POST /v1/responses HTTP/1.1\r\nHost: {server[0]}:{server[1]}\r\nAuthorization: Bearer {server[2]}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_a_connection_that_never_finishes_its_headers_is_closed_with_408(server):
    with _connect(server) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        answer, took = _until_closed(sock)
    assert _status(answer) == 408 and b"application/problem+json" in answer, answer
    assert HEADER_TIMEOUT * 0.8 <= took <= HEADER_TIMEOUT + 3


def test_a_connection_that_sends_nothing_is_closed(server):
    with _connect(server) as sock:
        answer, took = _until_closed(sock)
    assert took <= HEADER_TIMEOUT + 3 and _status(answer) == 408, answer


def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_deadline(server):
    request = _headers(server, 2)
    with _connect(server) as sock:
        started = time.monotonic()
        try:
            for byte in request:  # slowloris: always something, never the end
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            pass  # closed by the server mid-way, as it should
        answer, _ = _until_closed(sock)
        took = time.monotonic() - started
    assert _status(answer) == 408 and took <= HEADER_TIMEOUT + 3, (answer, took)


@pytest.mark.parametrize("trickle", [False, True], ids=["stops-short", "trickles"])
def test_a_body_shorter_than_its_content_length_gets_408_and_nothing_is_stored(server, trickle):
    body = json.dumps({"score": 2, "customer": {"id": "c-liar"}, "external_id": f"liar-{trickle}"}).encode()
    with _connect(server) as sock:
        sock.sendall(_headers(server, len(body) + 500) + body[:10])
        started = time.monotonic()
        if trickle:  # always a byte more, never the whole of it
            try:
                for byte in body[10:]:
                    sock.sendall(bytes([byte]))
                    time.sleep(0.05)
            except OSError:
                pass
        answer, _ = _until_closed(sock)
        took = time.monotonic() - started
    assert _status(answer) == 408, answer
    head, _, problem = answer.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head.lower() and b"connection: close" in head.lower()
    assert "Content-Length" in json.loads(problem)["detail"]
    assert BODY_TIMEOUT * 0.8 <= took <= BODY_TIMEOUT + 3, took


def test_slow_and_lying_clients_hold_up_nobody_else_and_nothing_acknowledged_is_lost(server):
    host, port, key = server
    body = json.dumps({"score": 3, "customer": {"id": "c-slow"}}).encode()
    held = []
    for n in range(40):  # half stall in their headers, half in their bodies
        sock = _connect(server)
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\n" if n % 2 else _headers(server, 500) + body[:5])
        held.append(sock)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://{host}:{port}", headers=headers, timeout=5) as client:
            accepted = []
            for n in range(20):
                started = time.monotonic()
                reply = client.post("/v1/responses", json={"score": 9, "customer": {"id": f"c-ok-{n}"}})
                assert reply.status_code == 202 and time.monotonic() - started < 1.0, reply.text
                accepted.append(reply.json()["id"])
        with ThreadPoolExecutor(len(held)) as pool:
            answers = list(pool.map(lambda s: _until_closed(s)[0], held))
        assert all(_status(a) == 408 for a in answers), [a[:40] for a in answers if _status(a) != 408]
        with httpx.Client(base_url=f"http://{host}:{port}", headers=headers, timeout=5) as client:
            for response_id in accepted:
                assert client.get(f"/v1/responses/{response_id}").status_code == 200
            assert client.get("/v1/tasks", params={"customer_id": "c-slow"}).json()["tasks"] == []
    finally:
        for sock in held:
            sock.close()


def test_a_kept_alive_connection_gets_a_new_header_deadline_per_request(server):
    host, port, key = server
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    with _connect(server) as sock:
        for _ in range(3):  # each request within its own deadline, the connection well past one
            time.sleep(HEADER_TIMEOUT * 0.6)
            sock.sendall(request)
            answer = _one_response(sock)
            assert _status(answer) == 200 and answer.endswith(b'{"status":"ok"}'), answer
