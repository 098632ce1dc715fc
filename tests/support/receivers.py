"""Real receivers on 127.0.0.1 for delivery tests: HTTP (threads; the app under test is async), a
Slack-like one that checks Block Kit, and an SMTP inbox for aiosmtpd."""

from __future__ import annotations

import email
import json
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every POST; answers ``status`` (changeable while running).

    ``echo``: the answer's body is the request's (receivers that echo what they were sent).
    ``gate``: when given, each request is recorded at once but answered only once the gate
    is set (a send in flight for as long as a test needs). ``delay``: seconds each answer
    takes; ``most_open`` is the most requests it held at once.
    """

    status: int = 200
    requests: list[Received] = field(default_factory=list)
    incomplete: int = 0  # requests whose body stopped short of its content-length
    echo: bool = False
    gate: threading.Event | None = None
    delay: float = 0.0
    open_requests: int = 0
    most_open: int = 0

    def __post_init__(self) -> None:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                expected = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(expected)
                if len(body) < expected:
                    # The sender died mid-request (the crash tests SIGKILL it): nothing was
                    # delivered and nobody is waiting for an answer; the sender retries.
                    receiver.incomplete += 1
                    self.close_connection = True
                    return
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                with lock:
                    receiver.open_requests += 1
                    receiver.most_open = max(receiver.most_open, receiver.open_requests)
                if receiver.gate is not None:
                    receiver.gate.wait(30)
                if receiver.delay:
                    time.sleep(receiver.delay)
                with lock:
                    receiver.open_requests -= 1
                answer = body if receiver.echo else b"ok" if receiver.status < 300 else b"receiver is down"
                self.send_response(receiver.status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HangingReceiver:
    """Accepts connections and reads each request, then never answers (until closed).

    ``open_requests`` counts the requests it holds right now, ``requests`` all it ever read.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.open_requests = 0
        self.most_open = 0
        self._release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.open_requests += 1
                    receiver.most_open = max(receiver.most_open, receiver.open_requests)
                receiver._release.wait()  # never answers; the sender times out or gives up
                with receiver._lock:
                    receiver.open_requests -= 1
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hang") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def block_kit_problems(payload: dict) -> list[str]:
    """What Slack would refuse in an incoming-webhook message (the subset npsloop uses), with
    Block Kit's documented limits: text objects 1-3000 characters, headers 150, fields 2000
    and at most 10, button text 75 and url 3000, at most 50 blocks."""
    problems = []

    def text_object(where: str, obj: dict, limit: int, kinds=("mrkdwn", "plain_text")) -> None:
        if obj.get("type") not in kinds:
            problems.append(f"{where}: text type must be one of {kinds}")
        text = obj.get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= limit:
            problems.append(f"{where}: text needs 1-{limit} characters, has {len(text or '')}")
        if "verbatim" in obj and obj["type"] != "mrkdwn":
            problems.append(f"{where}: verbatim is for mrkdwn only")

    if not isinstance(payload.get("text"), str) or not payload["text"]:
        problems.append("text: a fallback text is required")
    blocks = payload.get("blocks")
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        return problems + ["blocks: 1-50 blocks required"]
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "header":
            text_object(f"blocks.{i}.text", block["text"], 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                problems.append(f"blocks.{i}: section needs text or fields")
            if "text" in block:
                text_object(f"blocks.{i}.text", block["text"], 3000)
            for j, f in enumerate(block.get("fields", [])):
                text_object(f"blocks.{i}.fields.{j}", f, 2000)
            if len(block.get("fields", [])) > 10:
                problems.append(f"blocks.{i}: at most 10 fields")
        elif kind == "actions":
            for element in block["elements"]:
                if element["type"] != "button" or not element["url"].startswith("http") or len(element["url"]) > 3000:
                    problems.append(f"blocks.{i}: button needs a url of up to 3000 characters")
                text_object(f"blocks.{i}.button", element["text"], 75, ("plain_text",))
        elif kind == "context":
            if not 1 <= len(block["elements"]) <= 10:
                problems.append(f"blocks.{i}: context needs 1-10 elements")
            for j, element in enumerate(block["elements"]):
                text_object(f"blocks.{i}.elements.{j}", element, 3000)
        else:
            problems.append(f"blocks.{i}: unexpected block type {kind!r}")
    return problems


def mrkdwn_texts(payload: dict) -> list[dict]:
    """Every mrkdwn text object of a message (section texts, fields, context elements)."""
    found = []
    for block in payload["blocks"]:
        for obj in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                found.append(obj)
    return found


def inert_problems(payload: dict) -> list[str]:
    """Respondent text that Slack would turn into a mention, a link or a channel name: any
    ``<`` in mrkdwn (``<!channel>``, ``<url|text>``, ``<@U…>``), or a mrkdwn text without
    ``verbatim`` (automatic parsing of bare URLs, @mentions and #channels)."""
    problems = [f"fallback text has '<': {payload['text'][:80]!r}"] if "<" in payload["text"] else []
    for obj in mrkdwn_texts(payload):
        if "<" in obj["text"]:
            problems.append(f"mrkdwn has '<': {obj['text'][:80]!r}")
        if obj.get("verbatim") is not True:
            problems.append(f"mrkdwn not verbatim: {obj['text'][:80]!r}")
    return problems


class SlackReceiver(HttpReceiver):
    """Answers like Slack: 200 "ok", or 400 "invalid_blocks" for a malformed message."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.problems: list[list[str]] = []

    def messages(self) -> list[dict]:
        found = []
        for request in self.requests:
            payload = request.json()
            self.problems.append(block_kit_problems(payload))
            found.append(payload)
        assert not any(self.problems), self.problems
        return found


def field_values(message: dict) -> dict[str, str]:
    values = {}
    for block in message["blocks"]:
        for f in block.get("fields", []):
            label, _, value = f["text"].partition("\n")
            values[label.strip("*")] = value
    return values


class SmtpInbox:
    """What a local aiosmtpd server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"
