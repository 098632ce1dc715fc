"""A webhook / Slack receiver in its own process, so the load generator cannot slow it down.

    python -m benchmarks.alert_receiver PORT OUTFILE [--hang]

Answers every POST with 204 (HTTP/1.1 keep-alive) and appends one line per alert to
OUTFILE: ``<wall-clock seconds> webhook <data.response_id>`` for a signed webhook, or
``<wall-clock seconds> slack <customer>`` for a Slack message (its "Customer" field).

With ``--hang`` it reads each request and never answers: a receiver that accepts the
connection and then holds it, the worst kind for a sender that waits on it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


def describe(body: bytes) -> str:
    payload = json.loads(body)
    if "blocks" not in payload:
        return f"webhook {payload['data']['response_id']}"
    for block in payload["blocks"]:
        for field in block.get("fields", []):
            label, _, value = field["text"].partition("\n")
            if label == "*Customer*":
                return f"slack {value}"
    return "slack ?"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out, hang: bool) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            if hang:
                await reader.read()  # until the sender gives up and closes; never an answer
                return
            out.write(f"{time.time():.6f} {describe(body)}\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, path: str, hang: bool) -> None:
    with open(path, "a", buffering=1) as out:
        server = await asyncio.start_server(lambda r, w: handle(r, w, out, hang), "127.0.0.1", port)
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], "--hang" in sys.argv[3:]))
